"""Models: every model with its card (rendered safely), evaluation results, linked data
products, governance findings and latest bias outcome."""

from __future__ import annotations

import sys
from pathlib import Path

# AppTest.from_file and `streamlit run views/...` put views/ first on sys.path, where
# views/checks_page.py and views/catalog_page.py would shadow the checks and catalog packages in a
# fresh interpreter: the project root goes first.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path[:1]:
    sys.path.insert(0, _ROOT)

import pandas as pd  # noqa: E402 - after the sys.path fix
import streamlit as st  # noqa: E402 - after the sys.path fix

from catalog import model_queries, modelcards  # noqa: E402 - after the sys.path fix
from catalog.store import StoreError  # noqa: E402 - after the sys.path fix
from checks import model_checks  # noqa: E402 - after the sys.path fix
from ui.auth import page_user  # noqa: E402 - after the sys.path fix
from ui.db import conn, db_path  # noqa: E402 - after the sys.path fix
from ui.status import badge, label  # noqa: E402 - after the sys.path fix
from ui.tables import shown  # noqa: E402 - after the sys.path fix
from ui.text import md, url_param  # noqa: E402 - after the sys.path fix
from ui.untrusted_markdown import plain, safe_markdown  # noqa: E402 - after the sys.path fix

SECTION_LABELS = {key: text for key, (text, _pattern) in modelcards.REQUIRED_SECTIONS.items()}


@st.cache_data(ttl=5, show_spinner=False)
def _models(db: str) -> pd.DataFrame:
    with conn(db) as con:
        return model_queries.list_models(con)


@st.cache_data(ttl=5, show_spinner=False)
def _detail(db: str, model_id: str) -> dict:
    with conn(db) as con:
        return {"card": model_queries.latest_card(con, model_id),
                "revisions": model_queries.card_revisions(con, model_id),
                "evals": model_queries.eval_results(con, model_id),
                "products": model_queries.linked_products(con, model_id),
                "findings": model_checks.card_findings(con, model_id)}


def models_table(models: pd.DataFrame) -> None:
    view = pd.DataFrame({
        "model": models["name"],
        "version": models["version"].fillna("—"),
        "revision": models["revision"],
        "owner": models["owner"].fillna("no owner named"),
        "status": models["status"],
        "latest bias audit": [label(s) if isinstance(s, str) else ("not audited yet" if a else "no predictions named")
                              for s, a in zip(models["bias_status"], models["audited"], strict=True)],
        "missing card sections": [", ".join(SECTION_LABELS.get(m, m) for m in (missing if missing is not None else []))
                                  or "none" for missing in models["missing"]],
        "products": [", ".join(p) for p in models["products"]],
    })
    st.dataframe(shown(view), hide_index=True, width="stretch")


def card_tab(card: dict | None) -> None:
    if card is None:
        st.info("No card stored for this model.")
        return
    st.caption("The card as its authors wrote it. Raw HTML is shown as text, images are not loaded, "
               "only http(s) links are kept.")
    with st.container(border=True):
        st.markdown(safe_markdown(model_queries.card_body(card["raw_text"])))
    with st.expander("Card metadata (YAML front matter)"):
        st.json(card["metadata"], expanded=False)


def products_tab(products: pd.DataFrame, model_id: str) -> None:
    st.markdown(f"[Open {plain(model_id)} in the lineage graph](/lineage?node={url_param(model_id)})")
    if products.empty:
        st.caption("The card names no data products (`datasets`, `meshgov.outputs` or `meshgov.predictions`).")
        return
    view = products.assign(
        catalog=["/catalog?product=" + p if known else None
                 for p, known in zip(products["product_id"], products["in_catalog"], strict=True)],
        lineage="/lineage?node=" + products["product_id"])
    st.dataframe(view[["product_id", "relation", "name", "catalog", "lineage"]], hide_index=True, width="stretch",
                 column_config={"catalog": st.column_config.LinkColumn("Catalog", display_text="open product"),
                                "lineage": st.column_config.LinkColumn("Lineage", display_text="open lineage"),
                                "product_id": "Product (as the card names it)", "name": "Catalog name"})
    unknown = products.loc[~products["in_catalog"], "product_id"].tolist()
    if unknown:
        st.caption(f"Not in the catalog: {plain(', '.join(unknown))}")


def findings_tab(card: dict | None, findings: pd.DataFrame) -> None:
    missing = card["missing"] if card else []
    if missing:
        st.warning("The card lacks: " + ", ".join(SECTION_LABELS.get(m, m) for m in missing))
    else:
        st.success("The card documents intended use, limitations, bias and risks, license and training data.")
    if findings.empty:
        st.caption("No check run has looked at this card yet: `python -m checks run --all`.")
    else:
        st.dataframe(shown(findings.assign(status=findings["status"].map(label))), hide_index=True, width="stretch")


def main() -> None:
    page_user("models")
    st.title("Models")
    st.caption("Model cards, owners and versions, evaluation results, and the latest bias audit of each model.")
    try:
        models = _models(db_path())
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
        return
    if models.empty:
        st.info("No model cards yet. Ingest Hugging Face model cards (Markdown with YAML front matter) with "
                "`python -m catalog ingest path/to/cards/`, or seed the demo with `python -m catalog seed`.")
        return
    models_table(models)
    ids = list(models["model_id"])
    wanted = st.query_params.get("model")
    model_id = st.selectbox("Model", ids, index=ids.index(wanted) if wanted in ids else 0, key="models_model",
                            format_func=lambda m: str(models.set_index("model_id").loc[m, "name"]))
    st.query_params["model"] = model_id
    row = models.set_index("model_id").loc[model_id]
    detail = _detail(db_path(), model_id)
    st.subheader(plain(row["name"]))
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Version", str(row["version"] or "—"))
    c2.metric("Card revision", int(row["revision"]))
    c3.metric("Owner", str(row["owner"] or "—"))
    c4.metric("License", str(row["license"] or "—"))
    if isinstance(row["bias_status"], str):
        st.markdown(f"Latest bias audit: {badge(row['bias_status'])} — {plain(row['bias_reason'])} "
                    f"([details](/fairness?model={model_id}))")
    card_tab_, evals_tab, products_tab_, findings_tab_, versions_tab = st.tabs(
        ["Card", "Evaluation results", "Data products", "Governance findings", "Versions"])
    with card_tab_:
        card_tab(detail["card"])
    with evals_tab:
        if detail["evals"].empty:
            st.caption("The card's `model-index` holds no evaluation results.")
        else:
            st.dataframe(shown(detail["evals"]), hide_index=True, width="stretch")
    with products_tab_:
        products_tab(detail["products"], model_id)
    with findings_tab_:
        findings_tab(detail["card"], detail["findings"])
    with versions_tab:
        revisions = detail["revisions"].drop(columns=["raw_text"])
        st.dataframe(shown(revisions), hide_index=True, width="stretch")


main()
