import sys

from catalog.cli import main

# The program entry stands above the library: it may hand catalog.cli the subcommands of
# packages that sit above catalog (legal needs checks), which catalog itself must not import.
try:
    from legal.cli import register as legal_commands
except ImportError:  # an install without the legal package still has the catalog commands
    extra = ()
else:
    extra = (legal_commands,)

sys.exit(main(extra_commands=extra))
