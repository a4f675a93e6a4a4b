// The original Auth0 account-linking tutorial as a single-page app, on @auth0/auth0-spa-js.
//
// 1. Log in (loginWithRedirect); on every later page load the session comes back silently
//    (getTokenSilently: a hidden iframe, prompt=none, response_mode=web_message).
// 2. "Link another account": a second login, in a popup, on a second Auth0Client. It has its own
//    in-memory cache, so the primary user's tokens stay where they are and the two users never
//    share a cache entry; its ID token (getIdTokenClaims().__raw) is the one to link.
// 3. POST /api/v2/users/{id}/identities with the primary's *access token* (audience: the
//    Management API) and {"link_with": <the second login's ID token>}. (The original tutorial
//    sent the ID token as bearer; Auth0 no longer accepts that.)
// 4. The identities, the primary's own left out, each with an Unlink button:
//    DELETE /api/v2/users/{id}/identities/{provider}/{user_id}.
import {
  Auth0Client,
  createAuth0Client,
} from "./node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.esm.js";

const SCOPE = "openid profile email read:current_user update:current_user_identities";
const $ = (id) => document.getElementById(id);

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function loadConfig() {
  // config.json: {"domain": ..., "clientId": ..., "audience": ...}; see README.md.
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  return response.json();
}

const config = await loadConfig().catch((error) => {
  say(`Cannot read the configuration: ${error.message}`, true);
  throw error;
});
const redirectUri = window.location.origin + window.location.pathname;
const apiBase = new URL("/api/v2/", config.domain.startsWith("http") ? config.domain
  : `https://${config.domain}`).href;

const primary = await createAuth0Client({
  domain: config.domain,
  clientId: config.clientId,
  authorizationParams: { redirect_uri: redirectUri, audience: config.audience, scope: SCOPE },
});
// The linking login: same application, another client object with a cache of its own.
const linker = new Auth0Client({
  domain: config.domain,
  clientId: config.clientId,
  authorizationParams: { redirect_uri: redirectUri, scope: "openid profile email" },
});

let me = null; // the primary user's ID token claims

async function api(method, path, body) {
  const token = await primary.getTokenSilently();
  const response = await fetch(apiBase + path, {
    method,
    headers: { Authorization: `Bearer ${token}`,
               ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || answer.error_description || `HTTP ${response.status}`);
  return answer;
}

function showIdentities(identities) {
  const others = identities.filter((i) => `${i.provider}|${i.user_id}` !== me.sub);
  const rows = $("identities");
  rows.replaceChildren();
  for (const identity of others) {
    const row = document.createElement("tr");
    row.dataset.identity = `${identity.provider}|${identity.user_id}`;
    for (const value of [identity.connection, identity.provider, String(identity.user_id),
                         (identity.profileData || {}).email || ""]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    const cell = document.createElement("td");
    const button = document.createElement("button");
    button.textContent = "Unlink";
    button.addEventListener("click", () => unlink(identity));
    cell.append(button);
    row.append(cell);
    rows.append(row);
  }
  $("no-identities").hidden = others.length > 0;
}

async function showUser(how) {
  me = await primary.getUser();
  $("user").textContent = me.name && me.name !== me.email ? `${me.name} (${me.email})` : me.email;
  $("user-id").textContent = me.sub;
  $("how").textContent = how;
  $("logged-out").hidden = true;
  $("logged-in").hidden = false;
  const profile = await api("GET", `users/${encodeURIComponent(me.sub)}`);
  showIdentities(profile.identities);
  say("");
}

async function linkAccount() {
  say("Log in with the account to link, in the window that opened…");
  try {
    // A fresh login in any case (prompt=login): the browser's session is the primary user's.
    await linker.loginWithPopup({ authorizationParams: { prompt: "login" } });
    const claims = await linker.getIdTokenClaims();
    if (claims.sub === me.sub) throw new Error("That is the account you are logged in with.");
    const identities = await api("POST", `users/${encodeURIComponent(me.sub)}/identities`,
                                 { link_with: claims.__raw });
    showIdentities(identities);
    say(`Linked ${claims.email || claims.sub}.`);
  } catch (error) {
    say(`Not linked: ${error.message}`, true);
  } finally {
    await linker.logout({ openUrl: false }); // forget the second login here; the tenant keeps it
  }
}

async function unlink(identity) {
  try {
    const remaining = await api("DELETE", `users/${encodeURIComponent(me.sub)}/identities/`
      + `${encodeURIComponent(identity.provider)}/${encodeURIComponent(identity.user_id)}`);
    showIdentities(remaining);
    say(`Unlinked ${identity.provider}|${identity.user_id}.`);
  } catch (error) {
    say(`Not unlinked: ${error.message}`, true);
  }
}

$("login").addEventListener("click", () => primary.loginWithRedirect({ appState: { purpose: "primary" } }));
$("link").addEventListener("click", linkAccount);
$("logout").addEventListener("click", () => primary.logout({ logoutParams: { returnTo: redirectUri } }));

try {
  const query = new URLSearchParams(window.location.search);
  if ((query.has("code") || query.has("error")) && query.has("state")) {
    await primary.handleRedirectCallback();
    window.history.replaceState({}, document.title, redirectUri);
    await showUser("(logged in)");
  } else {
    try {
      await primary.getTokenSilently(); // the tenant's session, through a hidden iframe
      await showUser("(session restored silently)");
    } catch (error) {
      if (error.error !== "login_required" && error.error !== "consent_required") throw error;
      $("logged-out").hidden = false;
      say("You are not logged in.");
    }
  }
} catch (error) {
  $("logged-out").hidden = false;
  say(`Error: ${error.error_description || error.message}`, true);
}
