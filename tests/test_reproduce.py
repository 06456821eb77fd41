"""Divergence reports: location down to field path, ordering versus values, likely causes."""

from __future__ import annotations

from pipeline.render.job import assemble
from pipeline.reproduce import compare_images, compare_renders, likely_causes, nondeterministic_calls
from tests import factories

SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: ns\ndata:\n  token: {}\n"


def test_value_change_is_located_to_resource_and_field() -> None:
    first = assemble([("app/templates/secret.yaml", SECRET.format("aaa"))])
    second = assemble([("app/templates/secret.yaml", SECRET.format("bbb"))])
    chart = factories.chart_archive(templates={"secret.yaml": SECRET.format("{{ randAlphaNum 8 | b64enc }}")})
    (div,) = compare_renders(recipe="r", component="app", check="A = B", first=first, second=second,
                             labels=("A", "B"), chart=chart, in_tree={})
    assert div.location() == "recipe 'r' → component 'app' → file app/templates/secret.yaml → resource Secret/ns/s"
    assert div.fields == ("data.token",)
    assert not div.ordering_only
    assert div.causes == ("app/templates/secret.yaml:7 calls randAlphaNum",)
    text = div.format()
    assert "-  token: aaa" in text and "+  token: bbb" in text


def test_ordering_only_changes_are_told_apart() -> None:
    doc = "kind: ConfigMap\nmetadata:\n  name: c\ndata:\n  items:\n{}"
    first = assemble([("f.yaml", doc.format("  - a\n  - b\n"))])
    second = assemble([("f.yaml", doc.format("  - b\n  - a\n"))])
    (div,) = compare_renders(recipe="r", component="c", check="A = B", first=first, second=second,
                             labels=("A", "B"), chart=None, in_tree={})
    assert div.ordering_only
    assert div.causes == ()
    assert "ordering only" in div.format()


def test_equal_renders_have_no_divergence() -> None:
    render = assemble([("f.yaml", "a: 1\n")])
    assert compare_renders(recipe="r", component="c", check="A = B", first=render, second=render,
                           labels=("A", "B"), chart=None, in_tree={}) == []


def test_causes_found_in_helpers_when_the_file_itself_is_clean() -> None:
    chart = factories.chart_archive(templates={"_helpers.tpl": '{{- define "x" }}{{ uuidv4 }}{{ end }}\n',
                                               "cm.yaml": 'data: {{ include "x" . }}\n'})
    assert likely_causes("app/templates/cm.yaml", chart=chart, in_tree={}) == (
        "app/templates/_helpers.tpl:1 calls uuidv4",)


def test_every_listed_function_is_recognised() -> None:
    text = ("{{ now }}\n{{ genCA \"x\" 3 }}\n{{ lookup \"v1\" \"Secret\" \"ns\" \"n\" }}\n"
            "{{ genSelfSignedCert \"a\" nil nil 1 }}\n")
    assert [fn for _, fn in nondeterministic_calls(text)] == ["now", "genCA", "lookup", "genSelfSignedCert"]
    assert nondeterministic_calls("{{ .Values.nowhere }}\n") == []


def test_images_compared_by_reference() -> None:
    divs = compare_images(recipe="r", component="c", found=["a:1", "b:1"], locked=["a:1", "c:1"])
    assert [d.summary for d in divs] == ["image 'b:1' found in the render but not in the lock",
                                         "image 'c:1' is in the lock but no longer in the render"]
