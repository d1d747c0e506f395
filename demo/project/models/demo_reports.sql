{{ config(unique_key='uuid',
          post_hook="delete from {{ this }} t using {{ ref('demo_documents') }} d where d.uuid = t.uuid and d._deleted") }}
-- a deleted document's row leaves this table (its tombstone has no type)
select d.uuid, d.saved_timestamp, {{ doc_text(['form']) }} as form,
       to_timestamp(({{ doc_text(['reported_date']) }})::bigint / 1000) as reported,
       {{ doc_text(['contact', '_id']) }} as contact_uuid, d._deleted
from {{ ref('demo_documents') }} d
join {{ source('couchdb', env_var('POSTGRES_TABLE', 'couchdb')) }} r on r._id = d.uuid
where d.doc_type = 'data_record'
{% if is_incremental() %}
  and d.saved_timestamp >= (select coalesce(max(saved_timestamp), '-infinity') from {{ this }})
{% endif %}
