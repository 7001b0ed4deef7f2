-- Normalise legacy orders and keep one row per order id (the latest timestamp wins).
SELECT order_id, customer_id, order_ts, amount, status, country
FROM (
  SELECT
    order_id,
    customer_id,
    order_ts,
    amount,
    upper(trim(status))  AS status,
    upper(trim(country)) AS country,
    ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY order_ts DESC) AS rn
  FROM f01_raw.legacy_orders
  WHERE amount IS NOT NULL
    AND amount > 0
    AND country IS NOT NULL
    AND trim(country) <> ''
) t
WHERE rn = 1
  AND status IN ('NEW', 'SHIPPED', 'COMPLETED', 'CANCELLED')
