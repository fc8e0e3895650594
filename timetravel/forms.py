"""Forms: parse and validate what a person typed; the services decide the rest."""

from __future__ import annotations

import json

from django import forms

from checkpoints.codec import valid_filter_key
from checkpoints.models import ThreadStatus

from . import selectors

JSON_ATTRS = {"class": "vLargeTextField json-edit", "rows": 16, "spellcheck": "false"}


class JSONTextField(forms.CharField):
    """A textarea holding JSON; cleans to the parsed value, with the parser's
    line and column on a syntax error."""

    widget = forms.Textarea(attrs=JSON_ATTRS)

    def __init__(self, *, require_object: bool = False, **kwargs):
        self.require_object = require_object
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        if text in (None, ""):
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", code="json"
            ) from None
        if self.require_object and not isinstance(parsed, dict):
            raise forms.ValidationError("Expected a JSON object ({...})", code="json_object")
        return parsed


class ThreadSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Thread id starts with", max_length=1024)
    meta_key = forms.CharField(required=False, label="Metadata key", max_length=100)
    meta_value = forms.CharField(required=False, label="value", max_length=1000)
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *ThreadStatus.choices])
    graph = forms.CharField(required=False, max_length=200)
    sort = forms.ChoiceField(required=False, choices=list(selectors.SORT_LABELS.items()))
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, graph_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Free text with the registered graphs suggested: threads written by other
        # apps may name graphs this console does not run.
        self.graph_choices = list(graph_choices)
        self.fields["graph"].widget.attrs.update({"list": "graph-names", "placeholder": "any graph"})

    def clean_meta_key(self):
        key = self.cleaned_data["meta_key"].strip()
        if key and not valid_filter_key(key):
            raise forms.ValidationError("Letters, digits, '_', '.' and '-' only")
        return key

    def clean(self):
        data = super().clean()
        if data.get("meta_value") and not data.get("meta_key"):
            self.add_error("meta_key", "Give the key whose value to match")
        data["sort"] = data.get("sort") or selectors.DEFAULT_SORT
        return data


class ForkForm(forms.Form):
    MODES = [
        ("state", "Edit the state: changed keys are written, lists replace"),
        ("update", "Raw update: the JSON goes to update_state as is, through the reducers"),
    ]

    values = JSONTextField(require_object=True, label="State values (JSON)")
    as_node = forms.ChoiceField(required=False, label="As node")
    mode = forms.ChoiceField(choices=MODES, initial="state", widget=forms.RadioSelect)
    continue_run = forms.BooleanField(required=False, label="Continue the run from the fork")

    def __init__(self, *args, nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["as_node"].choices = [("", "(let the graph decide)"), *((n, n) for n in nodes)]


class DecisionForm(forms.Form):
    TYPES = [
        ("accept", "Accept"), ("edit", "Edit"), ("response", "Respond"), ("ignore", "Ignore"),
        ("json", "Resume with JSON"), ("resolve", "Mark resolved"),
    ]

    type = forms.ChoiceField(choices=TYPES)
    args = JSONTextField(required=False, label="Edited arguments (JSON)",
                         widget=forms.Textarea(attrs={**JSON_ATTRS, "rows": 8}))
    response = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    value = JSONTextField(required=False, label="Resume value (JSON)",
                          widget=forms.Textarea(attrs={**JSON_ATTRS, "rows": 8}))

    def clean(self):
        data = super().clean()
        kind = data.get("type")
        if kind == "edit" and not isinstance(data.get("args"), dict):
            self.add_error("args", "Give the edited arguments as a JSON object")
        if kind == "response" and not (data.get("response") or "").strip():
            self.add_error("response", "Write a response")
        if kind == "json" and (self.data.get("value") or "").strip() == "":
            self.add_error("value", "Give a JSON value to resume with")
        return data

    def decision(self) -> dict:
        data = self.cleaned_data
        kind = data["type"]
        args = {"edit": data.get("args"), "response": (data.get("response") or "").strip(),
                "json": data.get("value")}.get(kind)
        return {"type": kind, "args": args}


class AuditFilterForm(forms.Form):
    thread_id = forms.CharField(required=False, max_length=1024)
    action = forms.ChoiceField(required=False)
    username = forms.CharField(required=False, max_length=150, label="User")
    before = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        from .models import AuditEntry

        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "any action"), *AuditEntry.Action.choices]


class StoreSearchForm(forms.Form):
    query = forms.CharField(required=False, label="Search", max_length=2000,
                            help_text="Semantic when the store has an embedding index")
    filter = JSONTextField(required=False, require_object=True, label="Filter (JSON)",
                           widget=forms.TextInput(attrs={"placeholder": '{"kind": "preference"}', "size": 30}))
