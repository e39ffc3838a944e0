// The public API, through fetch, with the key from local storage. Every answer is the envelope.
const KEY = "reelgate.api_key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  describe() {
    return `${this.code}: ${this.message}`;
  }
}

export const key = {
  get: () => localStorage.getItem(KEY),
  set: (value) => localStorage.setItem(KEY, value),
  clear: () => localStorage.removeItem(KEY),
};

export async function call(method, path, { body, token = key.get() } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", `the server could not be reached (${err.message})`);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiError(response.status, response.status, `HTTP ${response.status} without a JSON body`);
  }
  if (!response.ok || envelope.code !== 0) {
    throw new ApiError(response.status, envelope.code, envelope.message || `HTTP ${response.status}`);
  }
  return envelope.data;
}

export const api = {
  models: (token) => call("GET", "/v1/models", { token }),
  create: (body) => call("POST", "/v1/videos/text2video", { body }),
  get: (id) => call("GET", `/v1/videos/text2video/${encodeURIComponent(id)}`),
  list: (pageNum, pageSize) =>
    call("GET", `/v1/videos/text2video?pageNum=${pageNum}&pageSize=${pageSize}`),
  cancel: (id) => call("POST", `/v1/videos/text2video/${encodeURIComponent(id)}/cancel`, { body: {} }),
  localKey: () => call("POST", "/studio/local-key", { body: {}, token: null }),
};

// Whether this server offers cancel: its OpenAPI lists the route (a 404 later also says no).
export async function cancelOffered() {
  try {
    const response = await fetch("/openapi.json", { cache: "no-store" });
    if (!response.ok) return false;
    const schema = await response.json();
    return Object.keys(schema.paths || {}).some(
      (path) => path.startsWith("/v1/videos/text2video/") && path.endsWith("/cancel"),
    );
  } catch {
    return false;
  }
}
