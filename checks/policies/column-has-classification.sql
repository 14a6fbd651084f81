-- id: column-has-classification
-- title: Every column has a classification
-- severity: failed
-- description: Records of processing (GDPR Art. 30) need to know what each column holds:
--   every column of the latest contract carries a classification (public, internal,
--   restricted, ...).
-- applies_to: all
SELECT c.product_id,
       c.product_id || '.' || c.dataset || '.' || c.column_name AS target,
       'column has no classification' AS reason
FROM columns AS c
WHERE c.classification IS NULL OR trim(c.classification) = ''
