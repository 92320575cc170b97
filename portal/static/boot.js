// Loads the portal's WebAssembly (the URLs carry content hashes; build.rs fills them in). An
// external module, so the CSP needs no inline script.
import init from "@GLUE@";

init({ module_or_path: "@WASM@" }).catch(() => {
  const p = document.createElement("p");
  p.className = "card narrow";
  p.textContent = "The portal could not start. Reload the page; if this persists, contact your practice.";
  document.body.append(p);
});
