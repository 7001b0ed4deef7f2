-- f01.daily_sales is read as f01's catalog names its table: f01_curated.daily_sales.
SELECT
  store_id,
  COUNT(*) AS days,
  CAST(SUM(units) AS BIGINT) AS units,
  CAST(SUM(revenue) AS DECIMAL(18,2)) AS revenue
FROM f01_curated.daily_sales
GROUP BY store_id
