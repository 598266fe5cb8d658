#!/usr/bin/env python3
"""Golden chat-template renderings, produced the way Hugging Face transformers renders them.

Usage: python3 reference/jinja_reference.py [REPO_ROOT]

Also renders the construct-by-construct snippets of tests/fixtures/jinja/snippets.json into
tests/fixtures/jinja/snippets_expected.json (the interpreter's unit-test oracle).

For every template tests/fixtures/chat/templates/<name>.jinja and every case
tests/fixtures/chat/cases/<case>.json, renders the template with jinja2 configured exactly as
transformers' `_compile_jinja_template` does (ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks, the loopcontrols extension, a `{% generation %}` tag that renders its body,
`raise_exception`, `strftime_now` and transformers' `tojson` filter) and the render arguments of
`apply_chat_template` (messages, tools (None when absent), documents=None, add_generation_prompt,
bos_token, eos_token and the case's extra kwargs). Writes tests/fixtures/chat/expected/<name>.json:
{case: {"output": str} | {"error": str}}. A template that does not compile gets
{"__compile__": {"error": str}}.

strftime_now is pinned to 2025-01-15 10:30:00 so the outputs are reproducible; the C++ golden
test injects the same instant.
"""
import datetime
import json
import os
import re
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = datetime.datetime(2025, 1, 15, 10, 30, 0)


class AssistantTracker(Extension):
    """transformers' {% generation %} tag, without the index tracking: renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_case(template, case):
    kwargs = dict(case.get("kwargs", {}))
    return template.render(messages=case["messages"], tools=case.get("tools"), documents=None,
                           add_generation_prompt=case.get("add_generation_prompt", False),
                           bos_token=case.get("bos_token", "<s>"),
                           eos_token=case.get("eos_token", "</s>"), **kwargs)


def render_snippets(root, env):
    """tests/fixtures/jinja/snippets.json ([{name, template, context}]) ->
    snippets_expected.json ({name: {"output": str} | {"error": str, "stage": "compile"|"render"}})."""
    base = os.path.join(root, "tests", "fixtures", "jinja")
    with open(os.path.join(base, "snippets.json"), encoding="utf-8") as fh:
        snippets = json.load(fh)
    out = {}
    for s in snippets:
        try:
            template = env.from_string(s["template"])
        except Exception as e:  # noqa: BLE001
            out[s["name"]] = {"error": f"{type(e).__name__}: {e}", "stage": "compile"}
            continue
        try:
            # Python prints generators with their memory address; keep the fixture stable.
            rendered = re.sub(r" at 0x[0-9a-f]+", " at 0x...", template.render(**s["context"]))
            out[s["name"]] = {"output": rendered}
        except Exception as e:  # noqa: BLE001
            out[s["name"]] = {"error": f"{type(e).__name__}: {e}", "stage": "render"}
    with open(os.path.join(base, "snippets_expected.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    print(f"{len(out)} snippets")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    base = os.path.join(root, "tests", "fixtures", "chat")
    cases = {}
    for f in sorted(os.listdir(os.path.join(base, "cases"))):
        if f.endswith(".json"):
            with open(os.path.join(base, "cases", f), encoding="utf-8") as fh:
                cases[f[:-5]] = json.load(fh)
    os.makedirs(os.path.join(base, "expected"), exist_ok=True)
    env = make_env()
    num_ok = num_err = 0
    for f in sorted(os.listdir(os.path.join(base, "templates"))):
        if not f.endswith(".jinja"):
            continue
        with open(os.path.join(base, "templates", f), encoding="utf-8") as fh:
            source = fh.read()
        out = {}
        try:
            template = env.from_string(source)
        except Exception as e:  # noqa: BLE001 - any compile failure is recorded
            out["__compile__"] = {"error": f"{type(e).__name__}: {e}"}
            template = None
        if template is not None:
            for name, case in cases.items():
                try:
                    out[name] = {"output": render_case(template, case)}
                    num_ok += 1
                except Exception as e:  # noqa: BLE001
                    out[name] = {"error": f"{type(e).__name__}: {e}"}
                    num_err += 1
        with open(os.path.join(base, "expected", f[:-6] + ".json"), "w", encoding="utf-8") as fh:
            json.dump(out, fh, ensure_ascii=False, indent=1)
            fh.write("\n")
    print(f"jinja2 {jinja2.__version__}: {num_ok} renderings, {num_err} errors")
    render_snippets(root, env)


if __name__ == "__main__":
    main()
