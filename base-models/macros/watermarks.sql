{#
  Watermarks of the base models (docs/models/README.md).

  Every model takes the rows of the model it reads whose saved_timestamp is
  strictly greater than the greatest one it has already taken.  That is
  exact because the root model takes the raw rows in tie-safe batches of
  strictly increasing timestamps (docs/ordering.md): rows of one timestamp
  always arrive in one commit, so nothing at or below a model's maximum can
  appear later.  The value is read when the model is rendered and written
  into the SQL as a literal, so that the planner sees the bound (an index
  range scan of the few new rows, not a guess).
#}

{# the raw table, as the source the models read #}
{% macro cht_raw() %}
  {{- return(source('couchdb', env_var('POSTGRES_TABLE', 'couchdb'))) -}}
{% endmacro %}

{# a function of this project, schema-qualified (created by cht_setup) #}
{% macro cht_fn(name) %}
  {{- return(adapter.quote(target.schema) ~ '.' ~ name) -}}
{% endmacro %}

{# the watermarks table: the root model's, which its own rows cannot hold #}
{% macro cht_watermarks() %}
  {{- return(adapter.quote(target.schema) ~ '."_cht_pipeline_watermarks"') -}}
{% endmacro %}

{# a query's single timestamp as a SQL literal, none when NULL or not run #}
{% macro cht_ts_literal(query) %}
  {%- if not execute -%}
    {{- return(none) -}}
  {%- endif -%}
  {%- set t = run_query("SELECT to_char((" ~ query ~ "), 'YYYY-MM-DD HH24:MI:SS.US')") -%}
  {%- set v = t[0][0] if t is not none and t | length > 0 else none -%}
  {%- if v is none -%}
    {{- return(none) -}}
  {%- else -%}
    {{- return("'" ~ v ~ "'::timestamp") -}}
  {%- endif -%}
{% endmacro %}

{# the greatest saved_timestamp this model holds (none: empty or not incremental) #}
{% macro cht_watermark() %}
  {%- if not is_incremental() -%}
    {{- return(none) -}}
  {%- endif -%}
  {{- return(cht_ts_literal("SELECT max(saved_timestamp) FROM " ~ this)) -}}
{% endmacro %}

{#
  The root model's watermark: its own rows cannot hold it, because deleted
  documents leave document_metadata after each run, so its max() can go
  back and would make it read the same deleted rows again every run.  The
  greatest timestamp taken is kept in _cht_pipeline_watermarks, written in
  the model's own transaction (cht_advance_watermark); max() of the table
  covers a database built by CHT Pipeline (no row in that table yet).
#}
{% macro cht_root_watermark() %}
  {%- if not is_incremental() or not execute -%}
    {{- return(none) -}}
  {%- endif -%}
  {%- set own = "SELECT max(saved_timestamp) FROM " ~ this -%}
  {%- set t = run_query("SELECT to_regclass(" ~ "'" ~ cht_watermarks() | replace("'", "''") ~ "') IS NOT NULL") -%}
  {%- if t[0][0] -%}
    {{- return(cht_ts_literal("SELECT greatest((" ~ own ~ "), (SELECT saved_timestamp FROM "
                              ~ cht_watermarks() ~ " WHERE model = 'document_metadata'))")) -}}
  {%- else -%}
    {{- return(cht_ts_literal(own)) -}}
  {%- endif -%}
{% endmacro %}

{#
  post_hook of the root model, before its deleted rows go: the watermark
  becomes the greatest timestamp of the rows just taken.  Writes nothing
  when it does not move (a run with nothing new).  A full build sets it.
#}
{% macro cht_advance_watermark() %}
  {%- set wm = cht_watermarks() -%}
  {%- if is_incremental() -%}
    UPDATE {{ wm }} AS w SET saved_timestamp = m.ts
    FROM (SELECT max(saved_timestamp) AS ts FROM {{ this }}) AS m
    WHERE w.model = 'document_metadata' AND m.ts > w.saved_timestamp;
  {%- else -%}
    DELETE FROM {{ wm }} WHERE model = 'document_metadata';
  {%- endif %}
    INSERT INTO {{ wm }} (model, saved_timestamp)
    SELECT 'document_metadata', max(saved_timestamp) FROM {{ this }}
    HAVING max(saved_timestamp) IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM {{ wm }} WHERE model = 'document_metadata')
{% endmacro %}
