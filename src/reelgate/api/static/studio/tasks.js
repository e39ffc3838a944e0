// The live task list (polled, newest first, paginated) and the task detail with its video.
import { api, ApiError } from "./api.js";

const POLL_MS = 1500;
const PARAMS = "reelgate.params."; // the parameters this browser submitted, per task_id
const FINISHED = ["succeed", "failed"];
const $ = (id) => document.getElementById(id);
const time = (ms) => (ms ? new Date(ms).toLocaleString() : "");

export function rememberParams(taskId, body) {
  try {
    localStorage.setItem(PARAMS + taskId, JSON.stringify(body));
  } catch {
    // storage full: the detail then shows what the server reports only
  }
}

function recalledParams(taskId) {
  try {
    return JSON.parse(localStorage.getItem(PARAMS + taskId) || "null");
  } catch {
    return null;
  }
}

export class TaskBoard {
  constructor({ cancelOffered }) {
    this.page = 1;
    this.pageSize = Number($("page-size").value);
    this.openId = null;
    this.openTask = null;
    this.cancelOffered = cancelOffered;
    this.timer = null;
    $("prev-page").addEventListener("click", () => this.go(this.page - 1));
    $("next-page").addEventListener("click", () => this.go(this.page + 1));
    $("page-size").addEventListener("change", () => {
      this.pageSize = Number($("page-size").value);
      this.go(1);
    });
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.search($("search-id").value.trim());
    });
  }

  start() {
    this.stop();
    const tick = async () => {
      if (!document.hidden) await this.refresh(); // a background tab costs the server nothing
      this.timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  go(page) {
    this.page = Math.max(1, page);
    this.refresh();
  }

  async refresh() {
    let tasks;
    try {
      tasks = await api.list(this.page, this.pageSize);
    } catch (err) {
      $("list-status").textContent = `Could not list tasks: ${err instanceof ApiError ? err.describe() : err}`;
      return;
    }
    this.renderList(tasks);
    if (this.openId && !(this.openTask && FINISHED.includes(this.openTask.task_status))) {
      const fresh = tasks.find((t) => t.task_id === this.openId);
      if (fresh) this.renderDetail(fresh, false);
      else await this.open(this.openId, { focus: false });
    }
  }

  renderList(tasks) {
    $("page-label").textContent = `Page ${this.page}`;
    $("prev-page").disabled = this.page === 1;
    $("next-page").disabled = tasks.length < this.pageSize;
    $("list-status").textContent = tasks.length === 0 ? (this.page === 1 ? "No tasks yet." : "No tasks on this page.") : "";
    const list = $("task-list");
    const focusedId = document.activeElement?.dataset?.taskId;
    list.replaceChildren(...tasks.map((task) => this.listItem(task)));
    if (focusedId) list.querySelector(`[data-task-id="${CSS.escape(focusedId)}"]`)?.focus();
  }

  listItem(task) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.taskId = task.task_id;
    button.setAttribute("aria-current", String(task.task_id === this.openId));
    const params = recalledParams(task.task_id);
    const title = document.createElement("span");
    title.className = "prompt";
    title.textContent = params?.prompt || task.task_info.external_task_id || `task ${task.task_id}`;
    const badge = document.createElement("span");
    badge.className = `badge ${task.task_status}`;
    badge.textContent = task.task_status;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${task.model_name || ""} · ${time(task.created_at)} · ${task.task_id}`;
    button.append(title, badge, meta);
    if (!FINISHED.includes(task.task_status)) {
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = task.task_progress || 0;
      bar.setAttribute("aria-label", `progress ${task.task_progress || 0}%`);
      button.append(bar);
    }
    button.addEventListener("click", () => this.open(task.task_id));
    item.append(button);
    return item;
  }

  async search(id) {
    $("search-error").textContent = "";
    if (!id) {
      $("search-error").textContent = "Enter a task_id or an external_task_id.";
      return;
    }
    await this.open(id, { reportTo: "search-error" });
  }

  async open(id, { focus = true, reportTo = "list-status" } = {}) {
    let task;
    try {
      task = await api.get(id);
    } catch (err) {
      $(reportTo).textContent = `Could not open ${id}: ${err instanceof ApiError ? err.describe() : err}`;
      return;
    }
    const changed = this.openId !== task.task_id;
    this.openId = task.task_id;
    this.renderDetail(task, changed);
    for (const b of $("task-list").querySelectorAll("button")) {
      b.setAttribute("aria-current", String(b.dataset.taskId === this.openId));
    }
    if (focus) $("detail").focus();
  }

  renderDetail(task, rebuild = true) {
    const before = this.openTask;
    this.openTask = task;
    const detail = $("detail");
    detail.hidden = false;
    // Keep a playing video when nothing it shows has changed.
    if (!rebuild && before && before.task_id === task.task_id && before.task_status === task.task_status
        && before.task_progress === task.task_progress) {
      return;
    }
    const params = recalledParams(task.task_id);
    const video = task.task_result?.videos?.[0];
    const parts = [];
    const heading = document.createElement("h3");
    heading.id = "detail-title";
    heading.textContent = `Task ${task.task_id}`;
    parts.push(heading);
    const state = document.createElement("p");
    state.id = "detail-status";
    state.setAttribute("role", "status");
    state.textContent = FINISHED.includes(task.task_status)
      ? `Status: ${task.task_status}${task.task_status_msg ? ` (${task.task_status_msg})` : ""}`
      : `Status: ${task.task_status}, ${task.task_progress || 0}%`;
    parts.push(state);
    if (video) {
      const player = document.createElement("video");
      player.id = "player";
      player.controls = true;
      player.preload = "metadata";
      player.playsInline = true;
      player.src = video.url;
      if (video.thumbnail_url) player.poster = video.thumbnail_url;
      player.setAttribute("aria-label", `video of task ${task.task_id}`);
      parts.push(player);
      const links = document.createElement("ul");
      links.className = "links";
      links.append(link(video.url, `Download video (${video.duration} s)`, "download-clean"));
      if (video.watermark_url) links.append(link(video.watermark_url, "Download watermarked video", "download-watermarked"));
      if (video.thumbnail_url) links.append(link(video.thumbnail_url, "Thumbnail", "download-thumbnail"));
      parts.push(links);
      if (video.thumbnail_url) {
        const thumb = document.createElement("img");
        thumb.className = "thumb";
        thumb.src = video.thumbnail_url;
        thumb.alt = `first frame of task ${task.task_id}`;
        parts.push(thumb);
      }
    }
    const rows = [
      ["task_id", task.task_id],
      ["external_task_id", task.task_info.external_task_id || "none"],
      ["model", task.model_name || params?.model_name || ""],
      ["units charged", task.final_unit_deduction],
      ["watermark", task.watermark_info?.enabled ? "yes" : "no"],
      ["seed", task.seed ?? ""],
      ["created", time(task.created_at)],
      ["updated", time(task.updated_at)],
    ];
    if (FINISHED.includes(task.task_status)) {
      rows.push(["took", `${((task.updated_at - task.created_at) / 1000).toFixed(1)} s`]);
    }
    if (params) {
      for (const [name, value] of Object.entries(params)) {
        if (["model_name", "external_task_id", "watermark_info"].includes(name)) continue;
        rows.push([name, typeof value === "object" ? JSON.stringify(value) : String(value)]);
      }
    }
    const list = document.createElement("dl");
    list.className = "params";
    for (const [name, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    const paramsTitle = document.createElement("h3");
    paramsTitle.textContent = params ? "Parameters" : "Parameters (as the server reports them)";
    parts.push(paramsTitle, list);
    if (this.cancelOffered && !FINISHED.includes(task.task_status)) {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "secondary";
      cancel.id = "cancel";
      cancel.textContent = "Cancel this task";
      cancel.addEventListener("click", () => this.cancel(task.task_id));
      parts.push(cancel);
    }
    const note = document.createElement("p");
    note.id = "detail-note";
    note.className = "error";
    note.setAttribute("role", "alert");
    parts.push(note);
    $("detail").replaceChildren(...parts);
  }

  async cancel(id) {
    try {
      const task = await api.cancel(id);
      this.renderDetail(task);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405) && err.code !== 1203) {
        this.cancelOffered = false; // this server has no cancel route
        $("cancel")?.remove();
        $("detail-note").textContent = "Cancel is not offered by this server.";
      } else {
        $("detail-note").textContent = `Could not cancel: ${err instanceof ApiError ? err.describe() : err}`;
      }
    }
  }
}

function link(href, text, id) {
  const item = document.createElement("li");
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.id = id;
  anchor.textContent = text;
  anchor.setAttribute("download", "");
  item.append(anchor);
  return item;
}
