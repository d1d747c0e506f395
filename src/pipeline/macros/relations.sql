{#- dbt's relation helpers that packages call by their bare name. -#}

{#- the relation as the database has it (with its type), or none -#}
{% macro load_relation(relation) -%}
{{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}
{%- endmacro %}

{% macro get_columns_in_relation(relation) -%}
{{ return(adapter.get_columns_in_relation(relation)) }}
{%- endmacro %}

{#- a data test's store_failures config: tests never store their failures here -#}
{% macro should_store_failures() -%}
{{ return(false) }}
{%- endmacro %}
