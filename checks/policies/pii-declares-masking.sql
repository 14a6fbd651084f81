-- id: pii-declares-masking
-- title: Products with personal data declare how it is masked
-- severity: failed
-- description: Data protection by design (GDPR Art. 25): a product with PII columns says how
--   personal data is masked for consumers without clearance, as the contract-level custom
--   property `masking` (e.g. hashed, partial, redacted).
-- applies_to: pii
SELECT c.product_id,
       c.product_id AS target,
       'holds personal data (' || string_agg(c.dataset || '.' || c.column_name, ', ' ORDER BY c.dataset, c.position)
         || ') but the contract declares no masking (customProperties: property masking)' AS reason
FROM columns AS c
WHERE c.pii
  AND NOT EXISTS (
      SELECT 1 FROM contract_properties AS cp
      WHERE cp.product_id = c.product_id
        AND lower(cp.property) = 'masking'
        AND coalesce(trim(cp.value), '') <> '')
GROUP BY c.product_id
