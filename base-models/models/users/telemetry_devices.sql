{#
  telemetry_devices: one row per telemetry row (NULLs when the doc has no
  device section), with the device details of the same doc version.
  docs/models/telemetry_devices.md
#}
{{
  config(
    materialized='incremental',
    unique_key='uuid',
    incremental_strategy='merge',
    on_schema_change='append_new_columns',
    indexes=[
      {'columns': ['uuid'], 'type': 'hash'},
      {'columns': ['saved_timestamp']},
      {'columns': ['period_start']},
      {'columns': ['android_version']},
    ]
  )
}}
{%- set since = cht_watermark() %}

SELECT
  telemetry.uuid,
  telemetry.saved_timestamp,
  telemetry.period_start,
  raw.doc#>>'{device,deviceInfo,hardware,manufacturer}' AS device_manufacturer,
  raw.doc#>>'{device,deviceInfo,hardware,model}' AS device_model,
  raw.doc#>>'{device,userAgent}' AS user_agent,
  raw.doc#>>'{device,deviceInfo,app,version}' AS cht_android_version,
  raw.doc#>>'{device,deviceInfo,software,androidVersion}' AS android_version,
  raw.doc#>>'{device,deviceInfo,storage,free}' AS storage_free,
  raw.doc#>>'{device,deviceInfo,storage,total}' AS storage_total,
  raw.doc#>>'{device,deviceInfo,network,upSpeed}' AS network_up_speed,
  raw.doc#>>'{device,deviceInfo,network,downSpeed}' AS network_down_speed
FROM {{ ref('telemetry') }} AS telemetry
JOIN {{ cht_raw() }} AS raw ON raw._id = telemetry.uuid AND raw.saved_timestamp = telemetry.saved_timestamp
{%- if since is not none %}
WHERE telemetry.saved_timestamp > {{ since }}
{%- endif %}
