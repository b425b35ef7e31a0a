// The Web IDE's editor: upgrades each <textarea data-editor> to a
// CodeMirror 6 editor. The textarea stays in the form, hidden, and gets the
// editor's text before the form is sent, so the server sees exactly what it
// sees without JavaScript. Built into ../static/ide.js by `make assets`.
import { EditorView, basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { markdown } from "@codemirror/lang-markdown";
import { go } from "@codemirror/lang-go";
import { python } from "@codemirror/lang-python";

function language(name) {
  const n = (name || "").toLowerCase();
  if (/\.(m?js|cjs|jsx)$/.test(n)) return [javascript({ jsx: true })];
  if (/\.tsx?$/.test(n)) return [javascript({ typescript: true, jsx: n.endsWith("x") })];
  if (/\.json$/.test(n)) return [json()];
  if (/\.(md|markdown)$/.test(n)) return [markdown()];
  if (/\.go$/.test(n)) return [go()];
  if (/\.py$/.test(n)) return [python()];
  return [];
}

// The editor lives in a shadow root: CodeMirror then styles itself with
// constructed stylesheets (adoptedStyleSheets), which the pages' CSP
// (style-src 'self', no inline <style>) lets through.
const theme = EditorView.theme({
  "&": { border: "1px solid #d1d9e0", borderRadius: "6px", backgroundColor: "#fff", fontSize: "13px" },
  ".cm-scroller": { minHeight: "20rem", maxHeight: "70vh", fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" },
  "&.cm-focused": { outline: "2px solid #0969da", outlineOffset: "2px" },
});

function nameOf(form) {
  const f = form && form.elements.namedItem("name");
  return f && f.value;
}

function upgrade(ta) {
  const label = ta.getAttribute("aria-label") || "File content";
  const host = document.createElement("div");
  host.className = "editor";
  const root = host.attachShadow({ mode: "open" });
  ta.parentNode.insertBefore(host, ta.nextSibling);
  const view = new EditorView({
    root,
    parent: root,
    state: EditorState.create({
      doc: ta.value,
      extensions: [
        basicSetup,
        theme,
        language(ta.dataset.filename || nameOf(ta.form)),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ "aria-label": label }),
      ],
    }),
  });
  ta.hidden = true;
  // The textarea's label now leads to the editor.
  if (ta.id) {
    document.querySelectorAll("label[for='" + ta.id + "']").forEach((l) =>
      l.addEventListener("click", (e) => { e.preventDefault(); view.focus(); }));
  }
  const sync = () => { ta.value = view.state.doc.toString(); };
  if (ta.form) ta.form.addEventListener("submit", sync);
  // Tests and other scripts reach the editor through the textarea.
  ta.editorView = view;
}

function start() {
  document.querySelectorAll("textarea[data-editor]").forEach(upgrade);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
