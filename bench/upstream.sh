# upstream.sh -- sourced by the gateway benches: the config that routes
# OpenAI-style generations to bench/fake_upstream, so that every bench
# measures the same gateway.
# upstream_yaml PORT [LIMITS]: the backends, ladder and gate of an imagegate
# config whose one backend, "upstream", is the fake upstream on
# 127.0.0.1:PORT; LIMITS, a YAML flow mapping, are that backend's call
# limits (timeouts, for an upstream told to hold its answers).
upstream_yaml() {
  cat <<YAML
backends:
  - name: upstream
    adapter: openai
    endpoint: http://127.0.0.1:$1/v1
    credential: env:BENCH_KEY
    model: gpt-image-1
    contract:
      classes: [generate]
      sizes: [1024x1024]
      grammar: natural-language
      tier: fingerprint
      license: {id: proprietary, flags: [commercial]}
      price: {model: free}${2:+
      limits: $2}
ladders:
  - {name: gen, class: generate, rungs: [{backend: upstream}]}
gate: {enabled: false}
YAML
}
