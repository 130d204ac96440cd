// [n] markers in answers link to their source cards (#src-<turn>-<n>).
// Hovering a marker shows the quote (title attribute) and outlines its card;
// clicking scrolls the card into view (unfolding an earlier answer) and
// flashes it. Gradio's markdown would open links in a new tab, so clicks are
// handled here, in the capture phase.
(function () {
  if (window.__ragCiteHandler) return;
  window.__ragCiteHandler = true;
  function cardFor(event) {
    var link = event.target.closest && event.target.closest("a.cite");
    if (!link) return null;
    var id = link.getAttribute("data-target") || (link.getAttribute("href") || "").replace(/^#/, "");
    return { link: link, card: document.getElementById(id) };
  }
  document.addEventListener("click", function (event) {
    var found = cardFor(event);
    if (!found) return;
    event.preventDefault();
    event.stopPropagation();
    var card = found.card;
    if (!card) return;
    var folded = card.closest("details");
    if (folded) folded.open = true;
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.classList.remove("flash");
    void card.offsetWidth;  // restart the animation
    card.classList.add("flash");
  }, true);
  document.addEventListener("mouseover", function (event) {
    var found = cardFor(event);
    if (found && found.card) found.card.classList.add("hovered");
  });
  document.addEventListener("mouseout", function (event) {
    var found = cardFor(event);
    if (found && found.card) found.card.classList.remove("hovered");
  });
})();
