#!/usr/bin/env bash
# `make demo` (for now): starts one `tidegate engine` and streams a chat completion from it with
# curl — the seed's qwen-chat request, as the engine simulator answers it at A10-class speed.
set -euo pipefail
BIN=${1:-build/tidegate}
out=$(mktemp)
"$BIN" engine --port 0 --model /mnt/models/Qwen --served-model-name qwen --log-level warn >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
url=$(grep -o 'http://[0-9.:]*' "$out")
echo "== tidegate engine at $url"
echo "== GET /v1/models"
curl -s "$url/v1/models"; echo
echo "== POST /v1/chat/completions (stream, with usage)"
curl -sN "$url/v1/chat/completions" -H 'Content-Type: application/json' \
  -H 'Host: qwen-chat-default.example.com' -d '{
  "model": "qwen", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 24,
  "temperature": 0.7, "top_p": 0.9, "seed": 10,
  "stop": ["<|endoftext|>", "<|im_end|>", "<|im_start|>"],
  "stream": true, "stream_options": {"include_usage": true}}'
echo "== engine metrics after the request"
curl -s "$url/metrics" | grep -E '^vllm:(generation_tokens_total|time_to_first_token_seconds_(sum|count)|request_success_total)'
