// Deep Draw's sketchpad (a Streamlit components-v2 frontend, plain JS, no build step).
//
// Draws with pointer events (mouse, pen and finger alike) and keeps the strokes in the API's
// format, [[x...], [y...]] per stroke in canvas pixels. While the pen is down it asks the API for
// guesses straight from the browser: at most one request in flight, the next one sent with the
// latest strokes as soon as the previous answer is in (and no sooner than `intervalMs` after the
// previous start). Nothing goes through Python until the pen lifts (or the prompt is recognised),
// so live guesses never rerun the page. If the browser cannot reach the API, the live line says so
// and the page still guesses at every pen lift through Python. On the Draw page (`explain`), each
// pen lift also asks why: the strokes are repainted in colours by how much the top guess needs them.

const pads = new WeakMap();
const INK = "#000000";
// An explanation not in by then is left to Python, so the page never waits long for the pad.
const EXPLAIN_TIMEOUT_MS = 3000;
// After a request that could not reach the API (down, or not allowing this page's origin), the pad
// waits this long before trying again, instead of trying at every point drawn.
const UNREACHABLE_WAIT_MS = 10000;

// A stroke's colour in an explanation: red the more the top guess falls without it, grey when it
// hardly matters, blue when the guess rises without it (the stroke made the model doubt).
function strokeColour(drop, largest) {
  if (drop < -0.02) return "#2f6fd0";
  if (drop <= 0.02 || largest <= 0) return "#a3abb5";
  const t = Math.min(drop / largest, 1);
  const mix = (a, b) => Math.round(a + (b - a) * t);
  return `rgb(${mix(232, 200)}, ${mix(160, 30)}, ${mix(120, 30)})`;
}

function createPad(root) {
  const canvas = root.querySelector("canvas");
  const guess = root.querySelector(".guess");
  const ctx = canvas.getContext("2d");
  const pad = {
    data: {},
    setStateValue: null,
    strokes: [], // finished strokes
    current: null, // the stroke being drawn
    pointerId: null,
    points: 0, // points drawn so far, all strokes: a request's snapshot is identified by it
    answeredPoints: 0,
    inFlight: false,
    lastStart: -Infinity,
    timer: null,
    locked: false, // the prompt was recognised: the round is over, drawing stops
    lockedPoints: 0, // the points of the drawing the pad recognised the prompt in, and sent
    lastSpoken: "",
    destroyed: false,
    colours: null, // per finished stroke, from the last explanation; null: all in ink
    unreachableUntil: -Infinity, // performance.now() before which the API is not asked again
  };

  function reachable() {
    return Boolean(pad.data.apiUrl) && performance.now() >= pad.unreachableUntil;
  }

  function paintAll() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    pad.strokes.forEach((stroke, i) => paintStroke(stroke, 1, pad.colours?.[i]));
    if (pad.current) paintStroke(pad.current, 1);
  }

  function paintStroke([xs, ys], from, colour = INK) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = pad.data.lineWidth || 10;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    const start = Math.max(from - 1, 0);
    ctx.moveTo(xs[start], ys[start]);
    // A single point still leaves a dot.
    if (xs.length === 1) ctx.lineTo(xs[0] + 0.01, ys[0]);
    for (let i = start + 1; i < xs.length; i++) ctx.lineTo(xs[i], ys[i]);
    ctx.stroke();
  }

  function position(event) {
    // The canvas may be shown smaller than its pixel size (phones): strokes stay in canvas pixels.
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  function snapshot() {
    const all = pad.current ? [...pad.strokes, pad.current] : pad.strokes;
    return all.map(([xs, ys]) => [xs.slice(), ys.slice()]);
  }

  function pointsOf(strokes) {
    return strokes.reduce((n, [xs]) => n + xs.length, 0);
  }

  function blocked() {
    return pad.data.disabled || pad.locked;
  }

  function onDown(event) {
    if (blocked() || pad.pointerId !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    pad.pointerId = event.pointerId;
    if (pad.colours) {
      pad.colours = null; // a new stroke: the explanation was of another drawing
      paintAll();
    }
    const [x, y] = position(event);
    pad.current = [[x], [y]];
    pad.points += 1;
    paintStroke(pad.current, 0);
    schedule();
  }

  function onMove(event) {
    if (event.pointerId !== pad.pointerId || !pad.current) return;
    event.preventDefault();
    const [x, y] = position(event);
    pad.current[0].push(x);
    pad.current[1].push(y);
    pad.points += 1;
    paintStroke(pad.current, pad.current[0].length - 1);
    schedule();
  }

  function onUp(event) {
    if (event.pointerId !== pad.pointerId) return;
    pad.pointerId = null;
    if (!pad.current) return;
    pad.strokes.push(pad.current);
    pad.current = null;
    if (!pad.locked) {
      // On the Draw page the page shows the same explained answer the pad colours by: it is asked
      // once, here, and goes to Python with the strokes (Python asks itself if it could not be had).
      if (pad.data.explain && reachable()) explain().then(sendToPython);
      else sendToPython();
    }
  }

  // ---- at pen lift on the Draw page: colour each stroke by how much the top guess needs it

  // The explained answer (top 5, as the page shows it) and the strokes it is for, or null.
  async function explain() {
    if (!pad.data.explain || !pad.data.apiUrl || !pad.strokes.length) return null;
    const strokes = snapshot();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), EXPLAIN_TIMEOUT_MS);
    try {
      const response = await fetch(`${pad.data.apiUrl}/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ strokes, top_k: 5, explain: true }),
        signal: abort.signal,
      });
      if (!response.ok) return null;
      const answer = await response.json();
      // Shown only if the drawing is still the one explained (no stroke begun or finished since).
      if (pad.destroyed || pad.current || pad.strokes.length !== strokes.length) return null;
      const largest = Math.max(0, ...answer.explanation.strokes.map((s) => s.drop));
      pad.colours = pad.strokes.map(() => "#a3abb5");
      for (const s of answer.explanation.strokes) pad.colours[s.index] = strokeColour(s.drop, largest);
      root.dataset.explained = String(strokes.length);
      paintAll();
      return { strokes, answer };
    } catch (error) {
      if (!abort.signal.aborted) pad.unreachableUntil = performance.now() + UNREACHABLE_WAIT_MS;
      return null; // the page asks the API itself, through Python; only the colours are missing
    } finally {
      clearTimeout(timer);
    }
  }

  function sendToPython(explained) {
    if (!pad.setStateValue) return;
    const value = { strokes: snapshot(), image: canvas.toDataURL("image/png").split(",", 2)[1] };
    if (explained && explained.strokes.length === value.strokes.length) value.answer = explained.answer;
    pad.setStateValue("drawing", value);
  }

  // ---- live guesses: one request in flight, coalesced to the latest strokes

  function schedule() {
    if (!pad.data.apiUrl || pad.locked || pad.inFlight || pad.timer) return;
    const next = Math.max(pad.lastStart + pad.data.intervalMs, pad.unreachableUntil); // interval: sketchpad.py
    const wait = next - performance.now();
    if (wait > 0) {
      pad.timer = setTimeout(() => {
        pad.timer = null;
        schedule();
      }, wait);
      return;
    }
    ask();
  }

  async function ask() {
    if (pad.points === pad.answeredPoints || pad.points < 2) return;
    const points = pad.points;
    const strokes = snapshot();
    pad.inFlight = true;
    pad.lastStart = performance.now();
    try {
      const response = await fetch(`${pad.data.apiUrl}/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ strokes, top_k: 3 }), // the API's default: the player's model
      });
      if (response.ok) {
        const answer = await response.json();
        if (!pad.destroyed && points > pad.answeredPoints) show(answer.predictions, points, strokes);
      }
    } catch (error) {
      pad.unreachableUntil = performance.now() + UNREACHABLE_WAIT_MS;
      if (!pad.answeredPoints) {
        guess.className = "guess offline";
        guess.textContent = "Live guesses are off (the browser cannot reach the API); guesses come when you lift the pen.";
      }
    } finally {
      pad.inFlight = false;
    }
    if (!pad.destroyed && pad.points !== pad.answeredPoints) schedule();
  }

  function show(predictions, points, strokes) {
    pad.answeredPoints = points;
    const prompt = pad.data.prompt;
    const hit = prompt && predictions.find((p) => p.label === prompt);
    let text;
    if (hit && hit.probability >= pad.data.threshold) {
      text = `I know, it's ${pad.data.promptText || prompt}!`;
      guess.className = "guess know";
      // The round is over: Python is told at once, with the strokes that were recognised.
      pad.locked = true;
      pad.lockedPoints = pointsOf(strokes);
      if (pad.timer) clearTimeout(pad.timer);
      pad.setStateValue?.("drawing", { strokes, image: canvas.toDataURL("image/png").split(",", 2)[1] });
    } else {
      const [first, ...rest] = predictions.map((p) => p.label);
      text = `I see ${first}` + rest.map((label) => `, or ${label}`).join("") + "…";
      guess.className = "guess";
    }
    guess.textContent = text;
    guess.dataset.points = String(points);
    guess.setAttribute(
      "aria-label",
      `${text} (${predictions.map((p) => `${p.label} ${Math.round(p.probability * 100)}%`).join(", ")})`,
    );
    speak(text);
  }

  function speak(text) {
    if (!pad.data.speak || !window.speechSynthesis) return;
    const words = text.replace(/, or .*$/, ""); // the best guess only, not the whole list
    if (words === pad.lastSpoken) return;
    pad.lastSpoken = words;
    window.speechSynthesis.cancel();
    window.speechSynthesis.speak(new SpeechSynthesisUtterance(words));
  }

  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onUp);

  pad.update = (data, setStateValue) => {
    const first = pad.setStateValue === null;
    pad.data = data;
    pad.setStateValue = setStateValue;
    root.classList.toggle("disabled", Boolean(data.disabled));
    root.style.maxWidth = `${data.size}px`;
    if (first) {
      canvas.width = data.size;
      canvas.height = data.size;
      // A new pad (first visit, back from another page): it starts from the kept drawing.
      pad.strokes = (data.strokes || []).map(([xs, ys]) => [xs.slice(), ys.slice()]);
      pad.points = pointsOf(pad.strokes);
      pad.answeredPoints = pad.points;
      paintAll();
      explain(); // the kept drawing, coloured again
    }
    if (data.disabled && pad.timer) {
      clearTimeout(pad.timer);
      pad.timer = null;
    }
    // Python has the last word: a round it did not end with the drawing the pad sent (its own answer
    // fell short) goes on. A page drawn for an earlier drawing (a pen lift's) says nothing of it.
    if (pad.locked && !data.disabled && !first && pointsOf(data.strokes || []) === pad.lockedPoints) pad.locked = false;
  };

  pad.destroy = () => {
    pad.destroyed = true;
    if (pad.timer) clearTimeout(pad.timer);
    canvas.removeEventListener("pointerdown", onDown);
    canvas.removeEventListener("pointermove", onMove);
    canvas.removeEventListener("pointerup", onUp);
    canvas.removeEventListener("pointercancel", onUp);
  };
  return pad;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".sketchpad");
  let pad = pads.get(parentElement);
  if (!pad) {
    pad = createPad(root);
    pads.set(parentElement, pad);
  }
  pad.update(data, setStateValue);
  return () => {
    pad.destroy();
    pads.delete(parentElement);
  };
}
