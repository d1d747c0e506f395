{#
  raw_sql: a model whose SQL is run as it is written (CREATE FUNCTION,
  CREATE TYPE, ...), the materialization CHT Pipeline 2.0 offers under this
  name, so that a deployment's models written for it run on these base
  models too.  As CHT Pipeline's: the pre-hooks that run inside the
  transaction, the SQL, COMMIT; post-hooks are not run.
#}
{% materialization raw_sql, default %}
  {{ run_hooks(pre_hooks) }}
  {% call statement('main') -%}
    {{ sql }}
  {%- endcall %}
  {{ adapter.commit() }}
  {{ return({'relations': [this.incorporate(type='view')]}) }}
{% endmaterialization %}
