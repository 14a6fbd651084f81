"""Word lists the generator draws from: people, places, teams, products.

Reserved example domains (RFC 2606) keep every generated email address fictitious while it
still looks real enough for a PII scanner to recognise.
"""

from __future__ import annotations

FEMALE_FIRST_NAMES = (
    "Anna", "Sophie", "Marie", "Laura", "Julia", "Emma", "Lea", "Clara", "Elena", "Sara",
    "Chloe", "Camille", "Lucia", "Giulia", "Martina", "Ingrid", "Astrid", "Maja", "Zofia",
    "Olivia", "Amelia", "Isla", "Charlotte", "Hanna", "Nora", "Ines", "Carmen", "Paula",
    "Greta", "Alice", "Eva", "Lotte", "Femke", "Agnieszka", "Karolina", "Emily",
)
MALE_FIRST_NAMES = (
    "Lukas", "Felix", "Jonas", "Paul", "Leon", "Maximilian", "Hugo", "Louis", "Arthur",
    "Lucas", "Marco", "Matteo", "Alessandro", "Pablo", "Javier", "Diego", "Erik", "Oskar",
    "Nils", "Jakub", "Piotr", "Tomasz", "Oliver", "George", "Harry", "Jack", "Noah",
    "Liam", "Daan", "Sem", "Bram", "Thomas", "David", "Samuel", "Henrik", "James",
)
LAST_NAMES = (
    "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Martin", "Bernard", "Dubois", "Laurent", "Moreau", "Rossi", "Russo", "Ferrari",
    "Esposito", "Garcia", "Fernandez", "Lopez", "Martinez", "Johansson", "Andersson",
    "Nilsson", "Nowak", "Kowalski", "Wisniewski", "Smith", "Jones", "Taylor", "Brown",
    "Williams", "de Jong", "Jansen", "de Vries", "Bakker", "Gruber", "Huber", "Bauer",
    "Pichler", "Miller", "Davis", "Wilson", "Anderson",
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")

# country -> (weight, phone prefix, currency)
COUNTRIES = {
    "DE": (0.24, "+49 151", "EUR"),
    "FR": (0.16, "+33 6", "EUR"),
    "NL": (0.10, "+31 6", "EUR"),
    "ES": (0.10, "+34 612", "EUR"),
    "IT": (0.10, "+39 320", "EUR"),
    "GB": (0.10, "+44 7700", "GBP"),
    "SE": (0.06, "+46 70", "SEK"),
    "PL": (0.06, "+48 501", "PLN"),
    "AT": (0.04, "+43 664", "EUR"),
    "US": (0.04, "+1 202", "USD"),
}
CURRENCIES = ("EUR", "GBP", "SEK", "PLN", "USD")

# Product catalogue words: three-word names so no product reads like a person's name.
PRODUCT_ADJECTIVES = (
    "Classic", "Lightweight", "Waterproof", "Organic", "Recycled", "Compact", "Insulated",
    "Everyday", "Premium", "Foldable", "Wireless", "Ergonomic",
)
PRODUCT_MATERIALS = ("Cotton", "Wool", "Bamboo", "Steel", "Ceramic", "Leather", "Linen", "Oak")
PRODUCT_ITEMS = {
    "apparel": ("T-Shirt", "Hoodie", "Rain Jacket", "Scarf", "Socks"),
    "home": ("Mug", "Cutting Board", "Blanket", "Lamp", "Vase"),
    "outdoor": ("Backpack", "Water Bottle", "Tent Peg Set", "Camping Stool", "Trail Map Case"),
    "electronics": ("Earbuds", "Charger", "Speaker", "Keyboard", "Desk Stand"),
    "beauty": ("Soap Bar", "Hand Cream", "Shampoo", "Face Towel", "Lip Balm"),
}

SEGMENTS = ("champions", "loyal", "potential", "at_risk", "dormant", "no_orders")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("female", "male", "non_binary")
CONSENT_PURPOSES = ("ai_recommendations", "newsletter", "analytics")
EVENT_TYPES = ("open", "click", "convert")

# The people who own and steward the mesh, per domain: (name, username/email, role).
TEAMS = {
    "Customer": ("Customer Data Team", (
        ("Lena Fischer", "lena.fischer@mesh.example.com", "Owner"),
        ("Tomas Ribeiro", "tomas.ribeiro@mesh.example.com", "Data Steward"),
        ("Priya Natarajan", "priya.natarajan@mesh.example.com", "Data Engineer"),
    )),
    "AI/ML": ("Personalisation ML Team", (
        ("Amara Okafor", "amara.okafor@mesh.example.com", "Owner"),
        ("Jonas Lindqvist", "jonas.lindqvist@mesh.example.com", "Data Steward"),
        ("Mei Chen", "mei.chen@mesh.example.com", "ML Engineer"),
    )),
    "Marketing": ("Lifecycle Marketing Team", (
        ("Sofia Marino", "sofia.marino@mesh.example.com", "Owner"),
        ("Daniel Kowalski", "daniel.kowalski@mesh.example.com", "Data Steward"),
        ("Hannah Becker", "hannah.becker@mesh.example.com", "Marketing Analyst"),
    )),
    "Commerce": ("Commerce Platform Team", (
        ("Lucas Moreau", "lucas.moreau@mesh.example.com", "Owner"),
        ("Aisha Rahman", "aisha.rahman@mesh.example.com", "Data Steward"),
        ("Erik Nilsson", "erik.nilsson@mesh.example.com", "Data Engineer"),
    )),
}
