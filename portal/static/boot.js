// Loads the portal's WebAssembly (the URLs carry content hashes; build.rs fills them in). An
// external module, so the CSP needs no inline script.
import init from "@GLUE@";

// The MLS device (end-to-end encrypted messaging) is a second module, fetched only when the
// portal asks for it after sign-in, so the sign-in page's first load stays small. Same origin,
// so the CSP's `script-src 'self'` admits it.
let mls = null;
globalThis.confidantLoadMls = () => {
  mls ??= import("@MLS_GLUE@").then(async (m) => {
    await m.default({ module_or_path: "@MLS_WASM@" });
    return m;
  });
  return mls;
};

init({ module_or_path: "@WASM@" }).catch(() => {
  const p = document.createElement("p");
  p.className = "card narrow";
  p.textContent = "The portal could not start. Reload the page; if this persists, contact your practice.";
  document.body.append(p);
});
