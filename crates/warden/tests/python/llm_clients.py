"""The official OpenAI and Anthropic Python SDKs as clients of Warden's LLM gateway.

Usage: llm_clients.py <gateway url, with its prefix: http://127.0.0.1:8080/llm> <gateway key>
Prints one JSON line of what each client saw; exits non-zero on any failure.
"""

import json
import sys

import anthropic
import openai

base, key = sys.argv[1], sys.argv[2]
out = {}

oa = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
r = oa.chat.completions.create(
    model="gpt-test", max_tokens=12, messages=[{"role": "user", "content": "hi"}]
)
out["openai_text"] = r.choices[0].message.content
out["openai_usage"] = [r.usage.prompt_tokens, r.usage.completion_tokens]

chunks = []
stream = oa.chat.completions.create(
    model="fast",
    stream=True,
    stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "hi"}],
)
usage = None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        chunks.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        usage = chunk.usage.completion_tokens
out["openai_stream"] = "".join(chunks)
out["openai_stream_chunks"] = len(chunks)
out["openai_stream_usage"] = usage

out["openai_models"] = sorted(m.id for m in oa.models.list())
emb = oa.embeddings.create(model="gpt-test", input="hello")
out["openai_embedding"] = len(emb.data[0].embedding)

try:
    openai.OpenAI(base_url=f"{base}/v1", api_key="wdn_llm_wrong", max_retries=0).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    out["openai_bad_key"] = "accepted"
except openai.AuthenticationError as e:
    out["openai_bad_key"] = e.status_code

try:
    oa.chat.completions.create(model="not-allowed", messages=[{"role": "user", "content": "hi"}])
    out["openai_bad_model"] = "accepted"
except openai.PermissionDeniedError as e:
    out["openai_bad_model"] = e.status_code

an = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key=key, max_retries=0)
m = an.messages.create(
    model="claude-test", max_tokens=21, messages=[{"role": "user", "content": "hi"}]
)
out["anthropic_text"] = m.content[0].text
out["anthropic_usage"] = [m.usage.input_tokens, m.usage.output_tokens]

with an.messages.stream(
    model="claude-test", max_tokens=22, messages=[{"role": "user", "content": "hi"}]
) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
out["anthropic_stream"] = text
out["anthropic_stream_usage"] = final.usage.output_tokens

try:
    anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="nope", max_retries=0).messages.create(
        model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    out["anthropic_bad_key"] = "accepted"
except anthropic.AuthenticationError as e:
    out["anthropic_bad_key"] = e.status_code

print(json.dumps(out))
