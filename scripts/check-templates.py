"""Keep the Jinja in roles and playbooks small (issue 17).

Fails, listing file, path and length, on every templated string (one containing
"{{" or "{%") longer than MAX_LENGTH characters, and on every "{% for" or
"namespace(": logic that needs more than one line of Jinja belongs in a tested
filter plugin (plugins/filter/), not in YAML.
"""

import glob
import re
import sys

import yaml

MAX_LENGTH = 300
# A loop or a namespace() is multi-line logic whatever its length; "{%- for" counts too.
FORBIDDEN = re.compile(r"\{%[-+]?\s*for\b|\bnamespace\(")
PATTERNS = ["roles/*/%s/**/*.yml" % part for part in ("tasks", "vars", "defaults", "handlers")]
PATTERNS.append("playbooks/**/*.yml")


class Loader(yaml.SafeLoader):
    """SafeLoader that reads custom tags (!vault, !unsafe...) as their plain node."""


def _untagged(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


Loader.add_multi_constructor("!", _untagged)


def strings(value, path=()):
    """Yield (path, string) for every string under value, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key, path)
            yield from strings(item, path + (str(key),))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, path + (str(index),))
    elif isinstance(value, str):
        yield ".".join(path), value


def problems(filename):
    with open(filename, encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=Loader)
    for path, text in strings(document):
        if "{{" not in text and "{%" not in text:
            continue
        if len(text) > MAX_LENGTH:
            yield "%s: %s: %d characters (at most %d)" % (filename, path, len(text), MAX_LENGTH)
        for construct in FORBIDDEN.findall(text):
            yield "%s: %s: %r (move the logic into a filter plugin)" % (filename, path, construct)


def main():
    files = sorted({name for pattern in PATTERNS for name in glob.glob(pattern, recursive=True)})
    found = [problem for filename in files for problem in problems(filename)]
    for problem in found:
        print(problem)
    if found:
        print("check-templates: %d problem(s) in %d files" % (len(found), len(files)), file=sys.stderr)
        return 1
    print("check-templates: ok (%d files)" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
