// The guesses (#guesses). Runs as gr.HTML js_on_load. The region stays while Gradio replaces its content with each
// answer, so it carries the live-region role: screen readers announce the new guesses politely, as a whole.
const region = element.closest('#guesses') || element;
region.setAttribute('role', 'status');
region.setAttribute('aria-live', 'polite');
region.setAttribute('aria-label', 'Guesses');
