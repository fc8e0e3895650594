"""Values as the console shows them: JSON of any state value, diffs, conversations, and
the pretty tree, which escapes everything."""

import dataclasses
import datetime

from timetravel import values


def test_to_jsonable_handles_what_states_hold():
    from langchain_core.messages import AIMessage, HumanMessage

    @dataclasses.dataclass
    class Point:
        x: int

    data = {
        "messages": [HumanMessage("hi"), AIMessage("hello", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "1"}])],
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "tags": {"b", "a"}, "point": Point(1), "raw": b"\x00\x01", "nan": float("nan"), "pair": (1, 2),
    }
    out = values.to_jsonable(data)
    assert out["messages"][0]["content"] == "hi" and out["messages"][0]["type"] == "human"
    assert out["when"] == "2026-01-02T03:04:05" and out["tags"] == ["a", "b"] and out["point"] == {"x": 1}
    assert out["raw"] == {"$bytes": "AAE=", "length": 2} and out["nan"] == "nan" and out["pair"] == [1, 2]
    chat = values.conversation(data)
    assert [(m.role, m.content) for m in chat] == [("user", "hi"), ("assistant", "hello")]
    assert chat[1].tool_calls == ('f({"a": 1})',)


def test_diff_shows_appended_items_and_changed_keys():
    old = {"messages": [{"role": "user", "content": "a"}], "n": 1, "gone": True}
    new = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "n": 2, "new": None}
    assert [(c.path, c.kind) for c in values.diff(old, new)] == [
        ("messages[1]", "added"), ("n", "changed"), ("gone", "removed"), ("new", "added"),
    ]
    assert values.diff({"a": 1}, {"a": 1.0}) == [values.Change("a", "changed", 1, 1.0)]


def test_pretty_html_escapes_and_caps_long_lists():
    html = str(values.pretty_html({"<b>": "<script>x</script>", "items": list(range(150))}))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert "50 earlier items" in html and ">149<" in html and ">49<" not in html
