{{ config(unique_key='uuid', indexes=[{'columns': ['uuid']}, {'columns': ['doc_type']}]) }}
-- every document of every database, newest state, deleted ones removed
select _id as uuid, saved_timestamp, {{ doc_text(['type']) }} as doc_type,
       split_part(source, '/', 2) as dbname, _deleted
from {{ source('couchdb', env_var('POSTGRES_TABLE', 'couchdb')) }}
{% if is_incremental() %}
where saved_timestamp >= (select coalesce(max(saved_timestamp), '-infinity') from {{ this }})
{% endif %}
