// The guesses (#guesses). Runs as gr.HTML js_on_load. The page sends a request every 150 ms while the pen is down,
// so announcing each answer would read the five bars out again several times a second. Screen readers hear a
// separate polite live region (#guesses-said) instead, which changes only when what the page says changes: the
// headline ("I think it is ...", "Not sure yet. Maybe ...?") or a hint in its place; the bars stay readable in the
// region itself.
const region = element.closest('#guesses') || element;
region.setAttribute('role', 'region');
region.setAttribute('aria-label', 'Guesses');

let said = document.getElementById('guesses-said');
if (!said) {
  said = document.createElement('p');
  said.id = 'guesses-said';
  said.className = 'sr-only';
  said.setAttribute('role', 'status');
  said.setAttribute('aria-live', 'polite');
  region.insertAdjacentElement('afterend', said); // outside the region, whose content Gradio replaces
}

const headline = () => {
  const lead = region.querySelector('.guesses .lead, .guesses .hint');
  return lead ? lead.textContent.trim() : '';
};

const announce = () => {
  const text = headline();
  if (text !== said.textContent) said.textContent = text;
};

new MutationObserver(announce).observe(region, { childList: true, subtree: true, characterData: true });
announce();
