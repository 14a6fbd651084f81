-- id: product-has-contract
-- title: Every product has a data contract
-- severity: failed
-- description: A product without a contract has no documented schema, purpose or owner,
--   so nothing about its personal data can be governed.
-- applies_to: all
SELECT p.product_id,
       p.product_id AS target,
       'no data contract is registered for this product' AS reason
FROM products AS p
WHERE NOT EXISTS (SELECT 1 FROM contracts AS c WHERE c.product_id = p.product_id)
