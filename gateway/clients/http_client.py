#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# The Rosetta Code "Distributed programming" HTTP client, in Python 3 (`http.client` for
# Python 2's `httplib`), pointed at rmi-gateway: a plain GET of its page.
#
#   python3 http_client.py [HOST [PORT [PATH]]]      (default 127.0.0.1 8080 /)
import http.client
import sys

HOST = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
PATH = sys.argv[3] if len(sys.argv) > 3 else "/"
conn = http.client.HTTPConnection(HOST, PORT)
conn.request("GET", PATH)
response = conn.getresponse()
print('Server Status: %d' % response.status)
print('Server Message: %s' % response.read().decode("utf-8"))
