{{- /* Manifest templates end in .tpl: they are Go templates, not YAML, until helm renders them. */ -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    {{- include "datastore-console.labels" . | nindent 4 }}
    app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "datastore-console.labels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "datastore-console.labels" . | nindent 8 }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 101
        runAsGroup: 0
        seccompProfile:
          type: RuntimeDefault
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: console
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          {{- with .Values.image.command }}
          command:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: DATASTORE_ENVIRONMENT
              value: {{ .Values.environment | quote }}
            - name: PGHOST
              value: {{ .Values.database.host | quote }}
            - name: PGPORT
              value: {{ .Values.database.port | quote }}
            - name: PGDATABASE
              value: {{ .Values.database.name | quote }}
            - name: PGSSLMODE
              value: {{ .Values.database.sslmode | quote }}
          {{- with .Values.credentialsSecret }}
          envFrom:
            - secretRef:
                name: {{ . }}
          {{- end }}
          readinessProbe:
            httpGet:
              path: /
              port: http
            periodSeconds: 10
          livenessProbe:
            httpGet:
              path: /
              port: http
            initialDelaySeconds: 10
            periodSeconds: 20
          lifecycle:
            preStop:
              exec:
                command: [sh, -c, "sleep 5"]
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
        {{- if and .Values.dbCheck.enabled .Values.credentialsSecret }}
        # Logs in with the issued credentials (PGUSER and PGPASSWORD from the Secret): not ready while
        # the login fails, so a rollout with bad credentials stops before it replaces working pods.
        - name: db-check
          image: "{{ .Values.dbCheck.image.repository }}:{{ .Values.dbCheck.image.tag }}"
          imagePullPolicy: {{ .Values.dbCheck.image.pullPolicy }}
          command:
            - sh
            - -c
            - |
              # psql on PATH, or in the versioned directory of Debian's packages.
              for d in /usr/lib/postgresql/*/bin; do [ -x "$d/psql" ] && PATH=$PATH:$d; done
              while :; do
                psql --no-psqlrc --tuples-only --no-align -c "SELECT 'logged in as ' || current_user || ' to ' || current_database()" \
                  || echo "login to $PGHOST:$PGPORT/$PGDATABASE failed"
                sleep {{ .Values.dbCheck.intervalSeconds }}
              done
          env:
            - name: HOME
              value: /tmp
            - name: PGHOST
              value: {{ .Values.database.host | quote }}
            - name: PGPORT
              value: {{ .Values.database.port | quote }}
            - name: PGDATABASE
              value: {{ .Values.database.name | quote }}
            - name: PGSSLMODE
              value: {{ .Values.database.sslmode | quote }}
            - name: PGCONNECT_TIMEOUT
              value: "5"
            - name: PGUSER
              valueFrom:
                secretKeyRef:
                  name: {{ .Values.credentialsSecret }}
                  key: username
            - name: PGPASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ .Values.credentialsSecret }}
                  key: password
          readinessProbe:
            exec:
              command:
                - sh
                - -c
                - for d in /usr/lib/postgresql/*/bin; do [ -x "$d/psql" ] && PATH=$PATH:$d; done; psql --no-psqlrc --quiet --tuples-only -c "SELECT 1"
            periodSeconds: 10
            timeoutSeconds: 8
          resources:
            {{- toYaml .Values.dbCheck.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
        {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
