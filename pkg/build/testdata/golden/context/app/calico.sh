#!/bin/bash
echo calico
