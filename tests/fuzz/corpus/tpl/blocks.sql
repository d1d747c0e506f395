{% test not_null(model, column_name) %}select * from {{ model }} where {{ column_name }} is null{% endtest %}
{% materialization raw_sql, default %}{{ return({'relations': [this]}) }}{% endmaterialization %}
{% docs d %}# doc {{ x }}{% enddocs %}{{ pkg.test_not_null('t', 'c') }}