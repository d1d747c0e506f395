{{ config(materialized='view') }}
select form, count(*) filter (where not _deleted) as reports,
       max(reported) as latest
from {{ ref('demo_reports') }}
group by form
order by reports desc
