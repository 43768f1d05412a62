#!/usr/bin/python3
"""Scenario: the web UI in headless Chromium, as a person would use it (the application note).

Against a running daemon with a simulated Modbus TCP device and a local broker that wants a
client certificate (like test.mosquitto.org's 8884):
  1. log in;
  2. add a device on the Modbus devices page;
  3. press Test and see its values (the JSON that would be sent);
  4. upload the CA, the client certificate and its key, and see their SHA-1 fingerprints;
  5. set the broker on the MQTT page, save, and see the new device's readings arrive at a
     subscriber;
  6. send AT+CGSN in the AT console and see the identity;
  7. log out (the pages then redirect to the login form).
Uses Debian's chromium, chromium-driver and python3-selenium (scripts/install-deps.sh);
exits 77 (skipped) when they are missing. MODBRIDGE_SCREENSHOTS=DIR keeps a screenshot of
each main page there (docs/screenshots/ holds the ones docs/web-ui.md shows).
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from webclient import password_hash, web_config  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    print("python3-selenium is not installed (scripts/install-deps.sh): skipped")
    sys.exit(77)

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
PW = "brows3r-pw"
SHOTS = os.environ.get("MODBRIDGE_SCREENSHOTS")


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--window-size=1280,900",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def shot(drv, name, height=None):
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    h = height or drv.execute_script("return document.body.scrollHeight")
    drv.set_window_size(1280, max(500, min(h + 40, 2400)))
    drv.save_screenshot(os.path.join(SHOTS, name + ".png"))
    drv.set_window_size(1280, 900)


def main():
    if not CHROMIUM or not DRIVER:
        print("chromium or chromedriver is not installed (scripts/install-deps.sh): skipped")
        return 77
    binary = os.path.abspath(harness.default_binary())
    t_start = time.monotonic()
    with harness.Workdir("web_browser") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [{"tcp": "127.0.0.1:%d" % tcp_port, "units": {
            "1": {"holding": {"identity": 200}}}}]})
        sim.start()
        port = harness.free_port()
        # From (almost) nothing: a login, and MQTT off until the broker is set in the UI.
        cfg = web_config(port, [("admin", password_hash(binary, PW))]) + f"""\
gateway: {{ imei: "358000000000042" }}
mqtt:
  enabled: false
logger:
  store: {wd.path}/store.db
"""
        d = harness.Daemon(wd, cfg)
        d.start()
        d.wait_log(r"web: listening on", 20)
        sub = harness.Subscriber(broker, "358000000000042/logger", qos=1)
        sub.start()
        base = f"http://127.0.0.1:{port}"
        # Outside the work dir: a failing test prints every *.log there, and Chromium's
        # profile is full of binary ones.
        profile = tempfile.mkdtemp(prefix="mb-chromium-")
        drv = browser(profile)
        # Pages draw themselves again after a save: an element found a moment ago may be gone.
        wait = WebDriverWait(drv, harness.TIMEOUT_SCALE * 20, ignored_exceptions=[
            NoSuchElementException, StaleElementReferenceException])
        find = drv.find_element
        try:
            # 1. Log in.
            drv.get(base + "/status")
            wait.until(lambda x: x.current_url.endswith("/login"))
            shot(drv, "login", 500)
            find(By.ID, "user").send_keys("admin")
            find(By.ID, "password").send_keys(PW)
            find(By.ID, "login").click()
            wait.until(lambda x: x.current_url.endswith("/status"))
            wait.until(lambda x: x.find_element(By.ID, "identity").text == "358000000000042")

            # 2. Add a device.
            drv.get(base + "/devices")
            wait.until(lambda x: x.find_element(By.ID, "add-device"))
            find(By.ID, "add-device").click()
            ed = wait.until(lambda x: x.find_element(By.CSS_SELECTOR, "section.editor"))

            def field(name):
                return ed.find_element(By.CSS_SELECTOR, f'[data-key="modbus.devices[0].{name}"]')
            field("id").send_keys("meter1")
            field("address").send_keys(f"127.0.0.1:{tcp_port}")
            field("start").send_keys("10;20")
            field("count").send_keys("2;3")
            field("period").clear()
            field("period").send_keys("1s")

            # 3. Test: read now, see the values.
            ed.find_element(By.CSS_SELECTOR, "button.test").click()
            pre = wait.until(lambda x: ed.find_element(By.CSS_SELECTOR, "pre.testjson"))
            msg = json.loads(pre.text)
            assert msg["ID"] == "meter1" and msg["V"] == [10, 11, 20, 21, 22], msg
            shot(drv, "devices-test")
            ed.find_element(By.CSS_SELECTOR, "button.save").click()
            wait.until(lambda x: "Saved" in x.find_element(By.ID, "flash").text)
            wait.until(lambda x: "meter1" in x.find_element(By.CSS_SELECTOR, "table").text)
            d.wait_log(r"saved .*added modbus\.devices entry id=meter1", 10, since=0)
            wait.until(lambda x: "bus 127.0.0.1" in x.find_element(By.ID, "plan").text)
            shot(drv, "devices")

            # 4. Upload the CA, client certificate and key; see the fingerprints.
            drv.get(base + "/certs")
            wait.until(lambda x: x.find_element(By.ID, "f-ca"))
            find(By.ID, "f-ca").send_keys(pki["ca"])
            find(By.ID, "f-cert").send_keys(pki["client_cert"])
            find(By.ID, "f-key").send_keys(pki["client_key"])
            find(By.ID, "do-upload").click()
            wait.until(lambda x: len(x.find_elements(By.CSS_SELECTOR, '.info[data-slot]')) == 3)
            ca_info = find(By.CSS_SELECTOR, '.info[data-slot="ca"]').text
            cert_info = find(By.CSS_SELECTOR, '.info[data-slot="cert"]').text
            assert ca_info.startswith("SHA1 ") and "CN=modbridge-test-ca" in ca_info, ca_info
            assert cert_info.startswith("SHA1 ") and "CN=modbridge-test" in cert_info, cert_info
            shot(drv, "certs")

            # 5. Set the broker, save: the new device's readings arrive at a subscriber.
            drv.get(base + "/mqtt")
            wait.until(lambda x: x.find_element(By.ID, "save"))
            Select(find(By.CSS_SELECTOR, '[data-key="mqtt.enabled"]')).select_by_value("true")
            b = find(By.CSS_SELECTOR, '[data-key="mqtt.broker"]')
            b.clear()
            b.send_keys(f"ssl://127.0.0.1:{broker.port_tls_cert}")
            find(By.ID, "save").click()
            wait.until(lambda x: "Saved" in x.find_element(By.ID, "flash").text)
            d.wait_log(r"mqtt: connected to ", 20, since=0)
            _, m = sub.wait_match(lambda t, p: json.loads(p).get("ID") == "meter1", 20,
                                  "a reading of meter1")
            assert json.loads(m)["V"] == [10, 11, 20, 21, 22], m
            shot(drv, "mqtt")
            drv.get(base + "/status")
            wait.until(lambda x: x.find_element(By.ID, "uplink").text == "connected")
            wait.until(lambda x: "[10,11,20,21,22]" in x.find_element(By.CSS_SELECTOR, '.values[data-device="meter1"]').text)
            shot(drv, "status")

            # 6. AT+CGSN in the console.
            drv.get(base + "/console")
            wait.until(lambda x: x.find_element(By.ID, "cmd"))
            find(By.ID, "cmd").send_keys("AT+CGSN")
            find(By.ID, "send").click()
            reply = wait.until(lambda x: x.find_element(By.CSS_SELECTOR, "pre.reply"))
            assert reply.text.splitlines() == ["358000000000042", "OK"], reply.text
            d.wait_log(r"web: user 'admin' from 127\.0\.0\.1: console 'AT\+CGSN' -> OK", 5, since=0)
            shot(drv, "console", 500)
            for page in ("serial", "logger", "log"):
                drv.get(base + "/" + page)
                wait.until(lambda x: x.find_element(By.CSS_SELECTOR, "#page > *"))
                time.sleep(0.3)
                shot(drv, page)
                if page == "logger":
                    # The Communication mode shows the chosen uplink's settings, and the
                    # HTTPS files are chosen among the uploaded ones (nothing saved here).
                    mode = Select(find(By.CSS_SELECTOR, '[data-key="logger.mode"]'))
                    assert mode.first_selected_option.get_attribute("value") == "mqtt"
                    assert find(By.ID, "uplink-mqtt").is_displayed()
                    assert not find(By.ID, "uplink-http").is_displayed()
                    mode.select_by_value("http")
                    assert find(By.ID, "uplink-http").is_displayed()
                    assert not find(By.ID, "uplink-mqtt").is_displayed()
                    ca = Select(find(By.CSS_SELECTOR, '[data-key="http.ca_file"]'))
                    assert any(o.text.endswith("(certificate)") for o in ca.options), \
                        [o.text for o in ca.options]

            # 7. Log out.
            find(By.ID, "logout").click()
            wait.until(lambda x: x.current_url.endswith("/login"))
            drv.get(base + "/devices")
            wait.until(lambda x: x.current_url.endswith("/login"))
        except Exception:
            drv.save_screenshot(os.path.join(wd.path, "failure.png"))
            with open(os.path.join(wd.path, "failure.html.out"), "w", encoding="utf-8") as fh:
                fh.write(drv.page_source)
            raise
        finally:
            drv.quit()
            shutil.rmtree(profile, ignore_errors=True)
        sub.stop()
        assert d.stop() == 0
        print(f"browser: all 7 steps passed in {time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
