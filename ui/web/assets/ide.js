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

function upgrade(ta) {
  const label = ta.getAttribute("aria-label") || "File content";
  const view = new EditorView({
    state: EditorState.create({
      doc: ta.value,
      extensions: [
        basicSetup,
        language(ta.dataset.filename || (ta.form && ta.form.elements.path && ta.form.elements.path.value)),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ "aria-label": label }),
      ],
    }),
  });
  ta.parentNode.insertBefore(view.dom, ta.nextSibling);
  ta.hidden = true;
  ta.classList.add("upgraded");
  view.dom.classList.add("editor");
  const sync = () => { ta.value = view.state.doc.toString(); };
  if (ta.form) ta.form.addEventListener("submit", sync);
  // Tests and other scripts reach the text through the textarea.
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
