#!/usr/bin/env bash
# The exact server command (the binary is not installable on our machines; see README "Serving").
# Export first:  python -m export.saved_model --model runs/demo --output /models --model_name wavegrad
exec tensorflow_model_server \
  --port=8500 --rest_api_port=8501 \
  --model_config_file="$(dirname "$0")/models.config" \
  --enable_batching --batching_parameters_file="$(dirname "$0")/batching.config" \
  --enable_model_warmup=true
