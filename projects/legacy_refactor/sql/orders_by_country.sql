-- Completed orders per country and day.
SELECT
  CAST(order_ts AS DATE)               AS order_date,
  country,
  COUNT(*)                             AS orders,
  CAST(SUM(amount) AS DECIMAL(18, 2))  AS amount
FROM f01_refined.orders_clean
WHERE status = 'COMPLETED'
GROUP BY CAST(order_ts AS DATE), country
