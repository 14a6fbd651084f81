-- id: pii-declares-retention
-- title: Products with personal data declare a retention period
-- severity: failed
-- description: Storage limitation (GDPR Art. 5(1)(e)): a product with PII columns states
--   how long rows are kept, as an slaProperties entry with property `retention` and a value.
-- applies_to: pii
SELECT c.product_id,
       c.product_id AS target,
       'holds personal data (' || string_agg(c.dataset || '.' || c.column_name, ', ' ORDER BY c.dataset, c.position)
         || ') but the contract declares no retention (slaProperties: property retention)' AS reason
FROM columns AS c
WHERE c.pii
  AND NOT EXISTS (
      SELECT 1 FROM slos AS s
      WHERE s.product_id = c.product_id
        AND lower(s.property) = 'retention'
        AND coalesce(trim(s.value), '') <> '')
GROUP BY c.product_id
