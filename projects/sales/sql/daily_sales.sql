-- Daily sales per store. Spark SQL: runs on Glue and, locally, on DataFusion.
SELECT
  CAST(event_ts AS DATE)                             AS sale_date,
  store_id,
  COUNT(DISTINCT event_id)                           AS orders,
  SUM(CAST(quantity AS BIGINT))                      AS units,
  CAST(SUM(quantity * unit_price) AS DECIMAL(18, 2)) AS revenue
FROM f01_raw.sales_events
GROUP BY CAST(event_ts AS DATE), store_id
