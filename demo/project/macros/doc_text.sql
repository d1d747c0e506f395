{% macro doc_text(path) -%}
  doc #>> '{ {{- path | join(',') -}} }'
{%- endmacro %}
