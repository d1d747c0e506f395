{{ config(unique_key='uuid',
          post_hook="delete from {{ this }} t using {{ ref('demo_documents') }} d where d.uuid = t.uuid and d._deleted") }}
-- a deleted document's row leaves this table (its tombstone has no type)
{% set contact_types = ['district_hospital', 'health_center', 'clinic', 'person'] %}
select d.uuid, d.saved_timestamp, d.doc_type as contact_type,
       {{ doc_text(['name']) }} as name, {{ doc_text(['parent', '_id']) }} as parent_uuid,
       d._deleted
from {{ ref('demo_documents') }} d
join {{ source('couchdb', env_var('POSTGRES_TABLE', 'couchdb')) }} r on r._id = d.uuid
where d.doc_type in ({% for t in contact_types %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
{% if is_incremental() %}
  and d.saved_timestamp >= (select coalesce(max(saved_timestamp), '-infinity') from {{ this }})
{% endif %}
