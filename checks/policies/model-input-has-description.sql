-- id: model-input-has-description
-- title: Products feeding a model have a description
-- severity: failed
-- description: Transparency for automated processing (GDPR Art. 13-15, 22; EU AI Act data
--   governance): a product in the AI/ML domain, or tagged features/training, documents
--   what it is for (contract description.purpose, or a dataset description).
-- applies_to: models
SELECT p.product_id,
       p.product_id AS target,
       'feeds a model (' || m.why || ') but has no description (description.purpose)' AS reason
FROM products AS p
JOIN model_products AS m USING (product_id)
WHERE coalesce(trim(p.description), '') = ''
