-- Every CDC event as a candidate row; the merge keeps the latest per customer_id
-- (by updated_at) and deletes customers whose latest event is a delete (op = 'D').
SELECT
  customer_id,
  lower(trim(email)) AS email,
  full_name,
  upper(country)     AS country,
  segment,
  event_ts           AS updated_at,
  op
FROM f01_raw.customer_events
