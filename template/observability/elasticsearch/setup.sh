#!/bin/sh
# One-shot set-up of the local Elasticsearch and Kibana (compose's log-setup service):
# the index template must exist before Vector creates the service's data stream, and
# Kibana gets a saved data view over it. Safe to run again: both calls replace.
# ELASTICSEARCH_URL, KIBANA_URL and TEMPLATE_NAME come from the environment.
set -eu

curl -fsS -X PUT "$ELASTICSEARCH_URL/_index_template/$TEMPLATE_NAME" \
  -H 'Content-Type: application/json' --data-binary @/setup/index-template.json
echo

curl -fsS -X POST "$KIBANA_URL/api/data_views/data_view" \
  -H 'Content-Type: application/json' -H 'kbn-xsrf: true' \
  --data-binary @/setup/data-view.json
echo
