// The studio's entry: sign-in (a typed key, or the local key offered on this machine), then
// the create form and the live task board.
import { api, ApiError, cancelOffered, key } from "./api.js";
import { CreateForm } from "./form.js";
import { rememberParams, TaskBoard } from "./tasks.js";

const $ = (id) => document.getElementById(id);
let board = null;
let form = null;
let offeredKey = null;

async function enter(token) {
  const models = await api.models(token); // proves the key
  key.set(token);
  // wire the forms before they show, so no keystroke reaches a form without its handler
  form ??= new CreateForm(async (body) => {
    const created = await api.create(body);
    rememberParams(created.task_id, body);
    board.go(1);
    await board.open(created.task_id, { focus: false });
  });
  form.setModels(models);
  board ??= new TaskBoard({ cancelOffered: await cancelOffered() });
  $("sign-in").hidden = true;
  $("studio").hidden = false;
  $("account").hidden = false;
  $("account-label").textContent = `Signed in (key ending ${token.slice(-4)})`;
  board.start();
}

function showSignIn(message = "") {
  board?.stop();
  $("studio").hidden = true;
  $("account").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("api-key").setAttribute("aria-invalid", String(Boolean(message)));
  offerLocalKey();
}

async function offerLocalKey() {
  try {
    offeredKey = (await api.localKey()).api_key;
    $("local-offer").hidden = false;
  } catch {
    offeredKey = null; // not offered here (see /studio/local-key's rule)
    $("local-offer").hidden = true;
  }
}

async function signIn(token) {
  try {
    await enter(token);
  } catch (err) {
    key.clear();
    showSignIn(err instanceof ApiError ? `Sign-in failed: ${err.describe()}` : String(err));
  }
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("api-key").value.trim();
  if (!token) {
    $("sign-in-error").textContent = "Enter an API key.";
    $("api-key").setAttribute("aria-invalid", "true");
    return;
  }
  signIn(token);
});
$("use-local-key").addEventListener("click", () => offeredKey && signIn(offeredKey));
$("sign-out").addEventListener("click", () => {
  key.clear();
  $("api-key").value = "";
  showSignIn();
});

const saved = key.get();
if (saved) signIn(saved);
else showSignIn();
