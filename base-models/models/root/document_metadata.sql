{#
  document_metadata: one row per document of the raw table (the root of
  every other model).  Takes the raw rows newer than its watermark, in
  batches of var('batch_size') that never split a timestamp; merged by
  uuid, so that an edit updates the row in place and the contact, person
  and report rows hanging off it by ON DELETE CASCADE stay.  A deleted
  document's row is updated to _deleted, then deleted by the post_hook,
  which cascades to every model below in this same transaction.
  docs/models/document_metadata.md
#}
{{
  config(
    materialized='incremental',
    unique_key='uuid',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    post_hook=[
      "{{ cht_advance_watermark() }}",
      "DELETE FROM {{ this }} WHERE _deleted = true",
    ],
    indexes=[
      {'columns': ['uuid'], 'type': 'hash'},
      {'columns': ['saved_timestamp']},
      {'columns': ['doc_type']},
      {'columns': ['_deleted']},
      {'columns': ['instance']},
      {'columns': ['dbname']},
    ]
  )
}}
{%- set since = cht_root_watermark() -%}
{%- set batch_size = var('batch_size', none) -%}
{%- set batched = batch_size is not none and batch_size | int > 0 %}

WITH new_rows AS (
  SELECT _id, source, _deleted, saved_timestamp, doc->>'type' AS doc_type
  FROM {{ cht_raw() }}
  {%- if since is not none %}
  WHERE saved_timestamp > {{ since }}
  {%- endif %}
)
{%- if batched %},
-- the newest timestamp of the oldest batch_size rows: the batch is every
-- row up to it, so that rows sharing a timestamp arrive together
batch_end AS (
  SELECT max(saved_timestamp) AS saved_timestamp
  FROM (SELECT saved_timestamp FROM new_rows ORDER BY saved_timestamp LIMIT {{ batch_size | int }}) AS oldest
)
{%- endif %}

-- an id in two databases (design documents): the latest written
SELECT DISTINCT ON (_id)
  _id AS uuid,
  saved_timestamp,
  _deleted,
  doc_type,
  split_part(source, '/', 1) AS instance,
  split_part(source, '/', 2) AS dbname
FROM new_rows
{%- if batched %}
WHERE saved_timestamp <= (SELECT saved_timestamp FROM batch_end)
{%- endif %}
ORDER BY _id, saved_timestamp DESC, source
