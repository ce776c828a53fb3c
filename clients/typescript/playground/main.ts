/**
 * The playground page (functions/imagegen/api/static/playground.html): a form
 * for every parameter, live progress from the event stream, the images with
 * their metadata. Bundled by esbuild into functions/ (`make web`).
 */
import { ImageGenClient, ImageGenError, JobFailedError } from "../src/index.js";
import type { GenerateRequest, JobUpdate, ResultResponse } from "../src/index.js";

const KEY_STORAGE = "imagegen.apiKey";
const FIELDS = ["prompt", "input_image_url", "num_images", "size", "format", "style", "quality", "api_key"];
const STATUS_LABELS: Record<string, string> = {
  PENDING: "En attente",
  INITIALIZING: "Initialisation",
  GENERATING: "Génération",
  SAVING: "Enregistrement",
  COMPLETED: "Terminé",
  FAILED: "Échec",
  CANCELLED: "Annulé",
};

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} missing from the page`);
  return found as T;
}

const form = element<HTMLFormElement>("form");
const promptInput = element<HTMLTextAreaElement>("prompt");
const keyInput = element<HTMLInputElement>("api_key");
const submitButton = element<HTMLButtonElement>("submit");
const cancelButton = element<HTMLButtonElement>("cancel");
const job = element("job");
const grid = element<HTMLUListElement>("grid");

let currentJobId: string | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

function client(): ImageGenClient {
  const apiKey = keyInput.value.trim();
  // The API is where the page is (…/playground), also under a path prefix (…/api/playground).
  return new ImageGenClient({ baseUrl: new URL(".", location.href).href, ...(apiKey ? { apiKey } : {}) });
}

function readForm(): GenerateRequest {
  const data = new FormData(form);
  const text = (name: string) => String(data.get(name) ?? "");
  const params: GenerateRequest = {
    prompt: text("prompt"),
    num_images: Number(text("num_images")),
    size: text("size") as GenerateRequest["size"],
    format: text("format") as GenerateRequest["format"],
    style: text("style") as GenerateRequest["style"],
    quality: text("quality") as GenerateRequest["quality"],
  };
  const source = text("input_image_url").trim();
  return source ? { ...params, input_image_url: source } : params;
}

function clearErrors(): void {
  for (const name of [...FIELDS, "general"]) element(`error-${name}`).textContent = "";
  for (const field of form.querySelectorAll(".field.invalid")) field.classList.remove("invalid");
}

function showFieldError(field: string, message: string): void {
  const target = FIELDS.includes(field) ? field : "general";
  const slot = element(`error-${target}`);
  slot.textContent = slot.textContent ? `${slot.textContent} · ${message}` : message;
  slot.closest(".field")?.classList.add("invalid");
  if (target === "api_key") element<HTMLDetailsElement>("access").open = true;
}

/** Each 4xx detail next to its field (`details[].field`), the rest in the banner. */
function showError(error: unknown): void {
  if (error instanceof ImageGenError) {
    if (error.details.length === 0) showFieldError(error.status === 401 || error.status === 403 ? "api_key" : "general", error.message);
    for (const detail of error.details) showFieldError(detail.field ?? "general", detail.message ?? error.message);
    const first = form.querySelector<HTMLElement>(".field.invalid input, .field.invalid textarea, .field.invalid select");
    first?.focus();
  } else if (!(error instanceof JobFailedError)) {
    showFieldError("general", error instanceof Error ? error.message : String(error));
  }
}

function showUpdate(update: Pick<JobUpdate, "status" | "progress" | "message"> & { job_id?: string }): void {
  const badge = element("job-status");
  badge.dataset.status = update.status;
  badge.textContent = STATUS_LABELS[update.status] ?? update.status;
  element("job-message").textContent = update.message;
  const progress = element("progress");
  progress.setAttribute("aria-valuenow", String(update.progress));
  element("progress-fill").style.width = `${update.progress}%`;
  element("progress-text").textContent = `${update.progress} %`;
  if (update.job_id) element("job-id").textContent = update.job_id;
}

function startClock(): void {
  const started = performance.now();
  const tick = () => (element("job-elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`);
  tick();
  timer = setInterval(tick, 100);
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} o`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} Ko`;
  return `${(bytes / 1024 / 1024).toFixed(1)} Mo`;
}

function showResult(result: ResultResponse): void {
  const seconds = result.metadata ? `${result.metadata.generation_time_seconds.toFixed(1)} s` : "–";
  const model = result.metadata?.model_name ?? "–";
  grid.replaceChildren(
    ...(result.images ?? []).map((image, index) => {
      const [width, height] = image.dimensions.split("x").map(Number);
      const name = image.url.split("/").pop()?.split("?")[0] ?? `image_${index + 1}`;
      const card = document.createElement("li");
      card.className = "card";
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = image.url;
      img.alt = `${image.description} (${index + 1})`;
      img.width = width ?? 0;
      img.height = height ?? 0;
      img.decoding = "async";
      figure.append(img);
      const meta = document.createElement("dl");
      meta.className = "meta";
      for (const [label, value] of [
        ["Dimensions", image.dimensions.replace("x", " × ")],
        ["Format", image.format],
        ["Taille", formatBytes(image.size_bytes)],
        ["Temps", seconds],
        ["Modèle", model],
      ] as const) {
        const item = document.createElement("div");
        const term = document.createElement("dt");
        term.textContent = label;
        const data = document.createElement("dd");
        data.textContent = value;
        data.title = value;
        item.append(term, data);
        meta.append(item);
      }
      const link = document.createElement("a");
      link.className = "download";
      link.href = image.url;
      link.download = name;
      link.textContent = `Télécharger ${name}`;
      const body = document.createElement("div");
      body.className = "card-body";
      body.append(meta, link);
      card.append(figure, body);
      return card;
    }),
  );
}

function setRunning(running: boolean): void {
  submitButton.disabled = running;
  submitButton.textContent = running ? "Génération…" : "Générer";
  cancelButton.hidden = !running;
  cancelButton.disabled = false;
  job.toggleAttribute("data-running", running);
  if (!running && timer) clearInterval(timer);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const params = readForm();
  const api = client();
  setRunning(true);
  try {
    const created = await api.create(params);
    currentJobId = created.job_id;
    element("empty").hidden = true;
    grid.replaceChildren();
    job.hidden = false;
    if (matchMedia("(max-width: 899px)").matches) job.scrollIntoView({ behavior: "smooth", block: "start" });
    startClock();
    showUpdate({ ...created, progress: 0 });
    const result = await api.wait(created.job_id, { onProgress: showUpdate });
    showUpdate({ ...result, progress: 100 });
    showResult(result);
  } catch (error) {
    if (error instanceof JobFailedError) showUpdate({ ...error.result, progress: error.result.progress ?? 100, message: error.message });
    showError(error);
  } finally {
    currentJobId = undefined;
    setRunning(false);
  }
});

cancelButton.addEventListener("click", async () => {
  if (!currentJobId) return;
  cancelButton.disabled = true;
  try {
    await client().cancel(currentJobId); // the stream then reports CANCELLED
  } catch (error) {
    showError(error);
  }
});

promptInput.addEventListener("input", () => (element("prompt-count").textContent = String(promptInput.value.length)));
keyInput.value = localStorage.getItem(KEY_STORAGE) ?? "";
keyInput.addEventListener("change", () => {
  const key = keyInput.value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
});

async function showHealth(): Promise<void> {
  const health = element("health");
  try {
    const answer = await client().health();
    health.dataset.state = answer.features.image_generation ? "ok" : "down";
    const model = Object.assign(document.createElement("span"), { className: "model", textContent: answer.model });
    const backend = Object.assign(document.createElement("span"), { className: "backend", textContent: `· ${answer.gemini_backend}` });
    health.replaceChildren(model, backend);
  } catch {
    health.dataset.state = "down";
    health.textContent = "API injoignable";
  }
}

void showHealth();
