// The create form: shaped by the selected model's capabilities, validated before submit.
import { ApiError } from "./api.js";

const TEXT_MAX = 2500;
const ID_MAX = 256;
const URL_MAX = 2048;
const AXES = ["horizontal", "vertical", "pan", "tilt", "roll", "zoom"];
const $ = (id) => document.getElementById(id);

export class CreateForm {
  constructor(onSubmit) {
    this.form = $("create-form");
    this.models = [];
    this.onSubmit = onSubmit;
    const config = $("camera-config");
    for (const axis of AXES) {
      const field = document.createElement("div");
      field.className = "field";
      field.innerHTML = `<label for="f-cam-${axis}">${axis}</label>
        <input id="f-cam-${axis}" type="number" min="-10" max="10" step="0.5" value="0" inputmode="decimal">`;
      config.append(field);
    }
    for (const id of ["f-model_name", "f-mode", "f-duration", "f-camera_type"]) {
      $(id).addEventListener("change", () => this.shape());
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  setModels(models) {
    this.models = models;
    const select = $("f-model_name");
    select.replaceChildren(
      ...models.map((m) => new Option(m.health && m.health !== "ok" ? `${m.id} (${m.health})` : m.id, m.id)),
    );
    const fallback = models.find((m) => m.default) || models[0];
    if (fallback) select.value = fallback.id;
    this.shape();
  }

  model() {
    return this.models.find((m) => m.id === $("f-model_name").value);
  }

  // Enable what the model accepts; disable the rest and say why.
  shape() {
    const model = this.model();
    if (!model) return;
    const caps = model.capabilities;
    $("d-model_name").textContent = `${model.description} · units: ${unitsText(model.units)}`;
    fillSelect($("f-duration"), caps.durations.map(String), "5");
    fillSelect($("f-aspect_ratio"), caps.aspect_ratios, "16:9");
    const mode = $("f-mode");
    for (const option of mode.options) option.disabled = !caps.modes.includes(option.value);
    if (!caps.modes.includes(mode.value)) mode.value = caps.modes[0];
    toggle("mode", caps.mode_choice, "This model has no mode choice: mode is accepted and ignored.");
    toggle("cfg_scale", caps.cfg_scale, "This model does not use cfg_scale: it is accepted and ignored.");
    toggle("negative_prompt", caps.negative_prompt, "This model does not take a negative prompt.");
    const current = mode.value;
    const soundOk = caps.sound.includes(current);
    toggle(
      "sound",
      soundOk,
      caps.sound.length === 0
        ? "This model makes no audio."
        : `Sound only in ${caps.sound.join(", ")} mode.`,
    );
    if (!soundOk) $("f-sound").value = "off";
    const cam = caps.camera_control;
    const duration = Number($("f-duration").value);
    const camOk = cam.modes.includes(current) && cam.durations.includes(duration);
    $("camera").disabled = !camOk;
    $("h-camera").textContent = camOk
      ? ""
      : cam.modes.length === 0
        ? "This model does not take camera control."
        : `Camera control only in ${cam.modes.join(", ")} mode with ${cam.durations.join(", ")} s.`;
    if (!camOk) $("f-camera_type").value = "";
    $("camera-config").hidden = $("f-camera_type").value !== "simple";
  }

  // The request body and the problems found in it: [body, [{field, message}]].
  read() {
    const problems = [];
    const body = { model_name: $("f-model_name").value };
    const prompt = $("f-prompt").value;
    if (prompt.trim().length === 0) problems.push(["prompt", "prompt is required (1 to 2500 characters)"]);
    else if (prompt.length > TEXT_MAX) problems.push(["prompt", `prompt is ${prompt.length} characters; at most 2500`]);
    body.prompt = prompt;
    const negative = $("f-negative_prompt");
    if (!negative.disabled && negative.value) {
      if (negative.value.length > TEXT_MAX) problems.push(["negative_prompt", "negative_prompt: at most 2500 characters"]);
      body.negative_prompt = negative.value;
    }
    const cfg = $("f-cfg_scale");
    if (!cfg.disabled) {
      const value = Number(cfg.value);
      if (cfg.value.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1) {
        problems.push(["cfg_scale", "cfg_scale must be a number from 0 to 1"]);
      } else body.cfg_scale = value;
    }
    if (!$("f-mode").disabled) body.mode = $("f-mode").value;
    body.duration = $("f-duration").value;
    body.aspect_ratio = $("f-aspect_ratio").value;
    if (!$("f-sound").disabled) body.sound = $("f-sound").value;
    const camType = $("f-camera_type").value;
    if (!$("camera").disabled && camType) {
      body.camera_control = { type: camType };
      if (camType === "simple") {
        const config = {};
        for (const axis of AXES) config[axis] = Number($(`f-cam-${axis}`).value || "0");
        const values = Object.values(config);
        if (values.some((v) => !Number.isFinite(v) || v < -10 || v > 10)) {
          problems.push(["camera", "camera_control.config: each value must be from -10 to 10"]);
        } else if (values.filter((v) => v !== 0).length !== 1) {
          problems.push(["camera", "camera_control.config: exactly one of the six must be non-zero"]);
        }
        body.camera_control.config = config;
      }
    }
    if ($("f-watermark").checked) body.watermark_info = { enabled: true };
    const external = $("f-external_task_id").value;
    if (external) {
      if (external.length > ID_MAX) problems.push(["external_task_id", "external_task_id: at most 256 characters"]);
      else if (/[\u0000-\u001f\u007f]/.test(external)) problems.push(["external_task_id", "external_task_id: no control characters"]);
      body.external_task_id = external;
    }
    const callback = $("f-callback_url").value.trim();
    if (callback) {
      let ok = callback.length <= URL_MAX;
      try {
        ok = ok && ["http:", "https:"].includes(new URL(callback).protocol);
      } catch {
        ok = false;
      }
      if (!ok) problems.push(["callback_url", "callback_url must be an http(s) URL of at most 2048 characters"]);
      body.callback_url = callback;
    }
    return [body, problems];
  }

  showProblems(problems) {
    for (const element of this.form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
    for (const element of this.form.querySelectorAll("p.error")) element.textContent = "";
    const summary = $("form-errors");
    summary.hidden = problems.length === 0;
    summary.replaceChildren();
    if (problems.length === 0) return;
    const title = document.createElement("p");
    title.textContent = problems.length === 1 ? "Fix this before creating:" : `Fix these ${problems.length} before creating:`;
    const list = document.createElement("ul");
    for (const [field, message] of problems) {
      const item = document.createElement("li");
      item.textContent = message;
      list.append(item);
      $(`e-${field}`).textContent = message;
      const input = field === "camera" ? $("f-camera_type") : $(`f-${field}`);
      input.setAttribute("aria-invalid", "true");
    }
    summary.append(title, list);
    summary.focus();
  }

  showServerError(err) {
    const summary = $("form-errors");
    summary.hidden = false;
    const text = document.createElement("p");
    text.textContent = `The server refused the task: ${err instanceof ApiError ? err.describe() : err}`;
    summary.replaceChildren(text);
    summary.focus();
  }

  async submit() {
    const [body, problems] = this.read();
    this.showProblems(problems);
    if (problems.length > 0) return;
    const button = $("submit");
    button.disabled = true;
    $("create-status").textContent = "Creating...";
    try {
      await this.onSubmit(body);
      $("create-status").textContent = "Task created.";
    } catch (err) {
      $("create-status").textContent = "";
      this.showServerError(err);
    } finally {
      button.disabled = false;
    }
  }
}

function fillSelect(select, values, preferred) {
  const previous = select.value;
  select.replaceChildren(...values.map((v) => new Option(v, v)));
  select.value = values.includes(previous) ? previous : values.includes(preferred) ? preferred : values[0];
}

function toggle(field, enabled, reason) {
  $(`f-${field}`).disabled = !enabled;
  $(`h-${field}`).textContent = enabled ? "" : reason;
}

export function unitsText(units) {
  const clip = Object.entries(units.per_clip_5s).map(([mode, u]) => `${mode} ${u} per 5 s`);
  const second = Object.entries(units.per_second).map(([mode, u]) => `${mode} ${u}/s`);
  return [...clip, ...second].join(", ") || "none";
}
