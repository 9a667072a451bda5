// PayNotify checkout page: "/" creates a sandbox order, "/checkout/{id}#token=…" follows one.
// `followOrder` below is the whole of what a merchant's own checkout page needs; the rest is this
// demo's page and its sandbox buttons.
(function () {
  "use strict";

  // ---------------------------------------------------------------------------------------------
  // followOrder: follow one order's payment over Server-Sent Events.
  //
  // `token` is the order's `stream_token` (EventSource cannot set headers, so it goes in the
  // query). Every handler is optional:
  //   status(data)      at once on connect (the order as it is now), then on every change
  //   progress(data)    a stage reported by the provider or the merchant: stage, percent, message
  //   finish(data)      the final status; the stream is already closed when this runs
  //   message(text)     events sent without a name
  //   connection(state) "live", "reconnecting" (the browser retries by itself and resumes after
  //                     the last event it saw), or "refused" (a wrong or expired token, or the
  //                     server is full: EventSource gives up)
  // Each data handler also gets the MessageEvent; `event.lastEventId` is the event's id.
  // The server never repeats or skips an event across reconnects, so there is nothing to dedupe.
  // ---------------------------------------------------------------------------------------------
  function followOrder(orderId, token, handlers) {
    const source = new EventSource(
      "/v1/orders/" + encodeURIComponent(orderId) + "/events?token=" + encodeURIComponent(token)
    );
    source.addEventListener("open", () => handlers.connection?.("live"));
    source.addEventListener("error", () => {
      handlers.connection?.(source.readyState === EventSource.CLOSED ? "refused" : "reconnecting");
    });
    source.addEventListener("status", (event) => handlers.status?.(JSON.parse(event.data), event));
    source.addEventListener("progress", (event) => handlers.progress?.(JSON.parse(event.data), event));
    source.addEventListener("finish", (event) => {
      // Final. Close now: the server ends the stream next, and an open EventSource would reconnect.
      source.close();
      handlers.finish?.(JSON.parse(event.data), event);
    });
    source.addEventListener("message", (event) => handlers.message?.(event.data, event));
    return source;
  }
  // ------------------------------------- end of followOrder ------------------------------------

  const $ = (id) => document.getElementById(id);

  /** POSTs JSON; resolves with the JSON answer, or rejects with the server's error message. */
  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(answer?.error?.message ?? "The server answered HTTP " + response.status + ".");
    }
    return answer;
  }

  function showNotice(element, text) {
    element.textContent = text;
    element.hidden = !text;
  }

  function formatAmount(minorUnits, currency) {
    const major = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return major.format(minorUnits / 100) + " " + currency;
  }

  /** The demo's settings: `emulator_url`, the provider emulator's address, when it runs. */
  async function demoSettings() {
    try {
      const response = await fetch("/demo/settings");
      return response.ok ? await response.json() : {};
    } catch {
      return {};
    }
  }

  function startLanding() {
    $("landing").hidden = false;
    const sandbox = $("create-order");
    const emulated = $("create-emulated-order");
    async function create(body, fragment) {
      sandbox.disabled = emulated.disabled = true;
      showNotice($("landing-error"), "");
      try {
        const order = await postJSON("/demo/orders", body);
        // The token travels in the fragment, which browsers never send, so it stays out of logs.
        location.assign(
          "/checkout/" + encodeURIComponent(order.id) + "#token=" + encodeURIComponent(order.stream_token) + fragment
        );
      } catch (error) {
        showNotice($("landing-error"), error.message);
        sandbox.disabled = emulated.disabled = false;
      }
    }
    sandbox.addEventListener("click", () => create({ amount: 1999, currency: "CNY" }, ""));
    emulated.addEventListener("click", () =>
      create({ amount: 1999, currency: "CNY", provider: "wechatpay" }, "&emulated=wechatpay")
    );
    demoSettings().then((settings) => (emulated.hidden = !settings.emulator_url));
  }

  function startOrder(orderId) {
    $("order").hidden = false;
    $("order-id").textContent = orderId;
    document.title = "Order " + orderId + " · PayNotify";
    const emulated = new URLSearchParams(location.hash.slice(1)).get("emulated") === "wechatpay";
    $("sandbox-outcomes").hidden = emulated;
    $("lost-callback").hidden = !emulated;
    const demo = emulated ? lostCallbackButton(orderId) : demoButtons(orderId);

    const token =
      new URLSearchParams(location.hash.slice(1)).get("token") ??
      new URLSearchParams(location.search).get("token");
    if (!token) {
      setConnection("refused", "not connected");
      showNotice($("order-notice"), "This link has no stream token. Open the order with the link its " +
        "checkout gave you, which ends in #token=…");
      // Adding the fragment to this URL by hand does not reload the page: do it.
      window.addEventListener("hashchange", () => location.reload());
      return;
    }

    const progress = $("progress");
    function showStatus(status) {
      $("status").textContent = status;
      $("order").dataset.status = status; // colours the badge, the bar and the result
      if (status === "succeeded") progress.value = 100;
    }

    window.paynotifySource = followOrder(orderId, token, {
      connection(state) {
        if (state === "refused") {
          setConnection(state, "stream refused: the token is wrong or expired, or the server is busy");
        } else {
          setConnection(state, state === "live" ? "live" : "reconnecting…");
        }
      },
      status(data, event) {
        log(event, data.previous ? data.previous + " → " + data.status : data.status, data);
        showStatus(data.status);
        if (typeof data.amount === "number" && data.currency) {
          $("amount").textContent = formatAmount(data.amount, data.currency);
          demo.price = { amount: data.amount, currency: data.currency };
        }
      },
      progress(data, event) {
        const parts = [data.stage, data.message].filter(Boolean);
        if (typeof data.percent === "number") {
          progress.value = Math.min(100, Math.max(0, data.percent));
          parts.push(data.percent + "%");
        }
        $("stage").textContent = parts.join(" · ");
        log(event, parts.join(" · "), data);
      },
      finish(data, event) {
        log(event, data.status, data);
        showStatus(data.status);
        $("result-title").textContent = "Payment " + data.status;
        $("result").hidden = false;
        setConnection("closed", "finished · stream closed");
        demo.finish();
        document.body.dataset.finished = "true";
      },
      message(text, event) {
        log(event, text, text);
      },
    });
  }

  function setConnection(state, text) {
    const line = $("connection");
    line.dataset.state = state;
    line.textContent = text;
  }

  /** Appends one line to the event log: id, event name, a summary; the full data on hover. */
  function log(event, summary, data) {
    const item = document.createElement("li");
    item.title = typeof data === "string" ? data : JSON.stringify(data);
    const id = document.createElement("span");
    id.className = "log-id";
    id.textContent = event.lastEventId ? "#" + event.lastEventId : "–";
    const name = document.createElement("span");
    name.className = "log-name";
    name.textContent = event.type;
    const body = document.createElement("span");
    body.className = "log-data";
    body.textContent = summary.length > 160 ? summary.slice(0, 159) + "…" : summary;
    item.append(id, name, body);
    $("log").append(item);
  }

  /** Wires the sandbox outcome buttons; `finish()` disables them for good. */
  function demoButtons(orderId) {
    const buttons = Array.from($("demo-buttons").querySelectorAll("button"));
    const error = $("demo-error");
    let progressStep = 0;
    let finished = false;

    async function send(body) {
      buttons.forEach((button) => (button.disabled = true));
      showNotice(error, "");
      try {
        await postJSON("/demo/orders/" + encodeURIComponent(orderId) + "/outcome", body);
      } catch (failure) {
        showNotice(error, failure.message);
      } finally {
        // The finish event may have arrived while the request was in flight.
        buttons.forEach((button) => (button.disabled = finished));
      }
    }

    $("demo-processing").addEventListener("click", () => send({ outcome: "processing" }));
    $("demo-progress").addEventListener("click", () => {
      progressStep = (progressStep % 3) + 1;
      send({ outcome: "progress", percent: progressStep * 25 });
    });
    $("demo-succeeded").addEventListener("click", () => send({ outcome: "succeeded" }));
    $("demo-failed").addEventListener("click", () => send({ outcome: "failed" }));

    return {
      finish() {
        finished = true;
        buttons.forEach((button) => (button.disabled = true));
      },
    };
  }

  /**
   * Pays an emulated WeChat Pay order at the provider emulator, as the shopper's phone would, and
   * tells the emulator to lose the callback: the page then finishes only because PayNotify asks
   * WeChat Pay (reconciliation). `price` is set from the order's first status event.
   */
  function lostCallbackButton(orderId) {
    const button = $("pay-lose-callback");
    const notice = $("lost-callback-notice");
    const demo = {
      price: null,
      finish() {
        button.disabled = true;
      },
    };
    button.addEventListener("click", async () => {
      button.disabled = true;
      showNotice(notice, "");
      try {
        const settings = await demoSettings();
        if (!settings.emulator_url || !demo.price) throw new Error("The provider emulator is not configured.");
        const trades = settings.emulator_url + "/control/trades";
        await postJSON(trades, { provider: "wechatpay", order_id: orderId, ...demo.price });
        await postJSON(trades + "/wechatpay/" + encodeURIComponent(orderId) + "/pay", { callback: "drop" });
        showNotice(notice, "Paid at WeChat Pay; its callback to PayNotify was lost. PayNotify asks WeChat " +
          "Pay about the order on its schedule (seconds after creation with make run), and this page finishes.");
      } catch (failure) {
        showNotice(notice, failure.message);
        button.disabled = false;
      }
    });
    return demo;
  }

  const match = /^\/checkout\/([^/]+)\/?$/.exec(location.pathname);
  if (match) {
    let orderId = match[1];
    try {
      orderId = decodeURIComponent(orderId);
    } catch {
      // A malformed %-escape: show the id as it came; the stream will refuse it.
    }
    startOrder(orderId);
  } else {
    startLanding();
  }
})();
