# A Pyro5 server in Python that Rust calls: its object registered as `python.store` in the name
# server PYRO_NS_HOST and PYRO_NS_PORT name (rmi-ns).
import Pyro5.api


@Pyro5.api.expose
class Store(object):
    def welcomeMessage(self, name):
        return "Hi welcome " + name

    def div(self, a, b):
        return a / b


daemon = Pyro5.api.Daemon(host="127.0.0.1")
uri = daemon.register(Store())
Pyro5.api.locate_ns().register("python.store", uri)
print("Ready. Object uri =", uri, flush=True)
daemon.requestLoop()
