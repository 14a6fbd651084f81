-- id: product-has-owner
-- title: Every product has an active owner
-- severity: failed
-- description: Accountability (GDPR Art. 5(2)): each data product names at least one
--   team member who has not left (no dateOut in the contract's team).
-- applies_to: all
SELECT p.product_id,
       p.product_id AS target,
       CASE WHEN count(o.product_id) = 0 THEN 'the contract names no owner (team is empty)'
            ELSE 'none of the ' || count(o.product_id) || ' named owners is active (all have a dateOut)'
       END AS reason
FROM products AS p
LEFT JOIN owners AS o ON o.product_id = p.product_id
GROUP BY p.product_id
HAVING count(o.product_id) FILTER (WHERE o.active) = 0
