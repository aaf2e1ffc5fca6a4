"use strict";
// Keep the page to return to after logging in, and say when a token was wrong.
const params = new URLSearchParams(location.search);
const next = params.get("next") || "/";
document.getElementById("login").action = "/login?" + new URLSearchParams({ next }).toString();
if (params.get("failed")) document.getElementById("failed").hidden = false;
